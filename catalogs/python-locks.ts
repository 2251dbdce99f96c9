// Written by `npm run lock` (tools/lock.ts) from the files in locks/: do not edit.
import type { LockSummary } from "./locks";

export const LOCKS: Readonly<Record<string, LockSummary>> = {
  "locks/lab-fake-vllm-0.11.0.txt": {"sha256":"0a553291b9ab86ee46a05f0a6f11aa85cb32490f897d772eb67ba7fdecc68688","packages":78,"pins":{"vllm":"0.11.0+fake","transformers":"5.17.0","huggingface-hub":"1.33.0","ray":"2.60.0"}},
  "locks/vllm-0.11.0.txt": {"sha256":"141be35e02a11983bdba10ab302b204348cfbda731f2f38fb8ffbff12bf0858f","packages":188,"pins":{"vllm":"0.11.0","torch":"2.8.0","transformers":"4.57.6","huggingface-hub":"0.36.2","ray":"2.51.2"}},
  "locks/vllm-0.19.1.txt": {"sha256":"492c12b4d9167e944cd9a301a66bc9cb8af0de21b74a6368f091f8b5a754cccd","packages":206,"pins":{"vllm":"0.19.1","torch":"2.10.0","transformers":"5.20.2","huggingface-hub":"2.4.0","ray":"2.60.0"}},
  "locks/vllm-0.31.0.txt": {"sha256":"1f9717cc8f652ae278e6511beeaf72db165389d88500770e35d3a0f5bc6360f8","packages":226,"pins":{"vllm":"0.31.0","torch":"2.13.0","transformers":"5.17.0","huggingface-hub":"1.33.0","ray":"2.60.0"}},
  "locks/vllm-0.33.0.txt": {"sha256":"2c4f3b443a35d67145025adb7ffbdbe343b978d64d8633eea5925bd7f062337b","packages":223,"pins":{"vllm":"0.33.0","torch":"2.14.0","transformers":"5.20.2","huggingface-hub":"2.4.0","ray":"2.60.0"}},
};
