// Written by `npm run lock` (tools/lock.ts) from the files in locks/: do not edit.
import type { LockSummary } from "./locks";

export const LOCKS: Readonly<Record<string, LockSummary>> = {
  "locks/lab-fake-vllm-0.31.0.txt": {"sha256":"5605b0698d57c89d2178760841d5b460ba3dbc4706c772b8f9c53a1a45119147","packages":78,"pins":{"vllm":"0.31.0+fake","transformers":"5.17.0","huggingface-hub":"1.33.0","ray":"2.59.0"}},
  "locks/lab-vllm-cpu-0.31.0.txt": {"sha256":"93e213ab7d835d01381ffd21c4c9d04feaf5372aa00fff1a170a9dc2091453a4","packages":190,"pins":{"vllm":"0.31.0+cpu","torch":"2.13.0","transformers":"5.17.0","huggingface-hub":"1.33.0","ray":"2.59.0"}},
  "locks/vllm-0.11.0.txt": {"sha256":"c4b575a40f2959574e2107abbf42000230f8f406d2530c648c3472fbb9318341","packages":175,"pins":{"vllm":"0.11.0","torch":"2.8.0","transformers":"4.57.3","huggingface-hub":"0.36.0","ray":"2.52.1"}},
  "locks/vllm-0.19.1.txt": {"sha256":"24ec1eeed342c755260898ae989a33a3769f20c5a9b12254ad5869ec2cf6108e","packages":199,"pins":{"vllm":"0.19.1","torch":"2.10.0","transformers":"5.6.2","huggingface-hub":"1.12.0","ray":"2.55.1"}},
  "locks/vllm-0.31.0.txt": {"sha256":"446cf05e4e1e85f3163b8997c4b12a5a7ac57c8b04a5ead2c45705f80a61ac58","packages":226,"pins":{"vllm":"0.31.0","torch":"2.13.0","transformers":"5.17.0","huggingface-hub":"1.33.0","ray":"2.59.0"}},
  "locks/vllm-0.33.0.txt": {"sha256":"2c4f3b443a35d67145025adb7ffbdbe343b978d64d8633eea5925bd7f062337b","packages":223,"pins":{"vllm":"0.33.0","torch":"2.14.0","transformers":"5.20.2","huggingface-hub":"2.4.0","ray":"2.60.0"}},
};
