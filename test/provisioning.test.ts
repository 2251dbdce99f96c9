/**
 * Every decision path of the node steps that need neither systemd nor a network beyond loopback,
 * exercised by running the rendered scripts (fake nvidia-smi on PATH where a GPU would be). The
 * steps that need systemd, Ray or several machines run on the lab's nodes (test/lab.e2e.test.ts).
 */
import {
  appendFileSync,
  existsSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
  cpSync,
  mkdirSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";
import { Sandbox, FAKES } from "./support/sandbox";
import { startListening, type Started } from "./support/processes";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";

const ROOT = join(__dirname, "..");
const single = planStack(readStackFile("single-gpu").sections, { stack: "single-gpu" });
const ADDR = { head: "127.0.0.1" };
const sandboxes: Sandbox[] = [];
function sandbox(
  plan: Plan = single,
  node = "head",
  addresses: Record<string, string> = ADDR,
  overrides: Record<string, string> = {},
): Sandbox {
  const s = new Sandbox(plan, node, addresses, overrides);
  s.osRelease("ubuntu", "22.04");
  s.fakeSmi({
    DRIVER: "580.95.05",
    CUDA: "13.0",
    GPU_NAME: "NVIDIA A10G",
    GPU_MIB: 23028,
    GPU_COUNT: 1,
  });
  sandboxes.push(s);
  return s;
}
afterAll(() => sandboxes.forEach((s) => s.cleanup()));

const result = (out: string) => /RESULT (changed|unchanged)/.exec(out)?.[1];

describe("preflight", () => {
  it("passes on the planned machine and changes nothing", () => {
    const s = sandbox();
    const r = s.run("preflight.sh");
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/system: ubuntu 22.04 \(supported\)/);
    expect(r.out).toMatch(/GPUs: 1 × NVIDIA A10G, memory as planned/);
    expect(result(r.out)).toBe("unchanged");
  });
  it("refuses another GPU model, too few GPUs, too little memory, an unsupported system, too little disk", () => {
    const s = sandbox();
    s.fakeSmi({ GPU_NAME: "Tesla T4", GPU_MIB: 15360 });
    expect(s.run("preflight.sh").err).toMatch(
      /GPU "Tesla T4" differs from the plan's "NVIDIA A10G" \(A10G\)/,
    );
    s.fakeSmi({ GPU_COUNT: 0 });
    expect(s.run("preflight.sh").err).toMatch(/found 0 GPU\(s\), the plan needs 1 × A10G/);
    s.fakeSmi({ GPU_MIB: 12000 });
    expect(s.run("preflight.sh").err).toMatch(/has 12000 MiB, the plan assumes ≥ 22\d\d\d MiB/);
    s.fakeSmi({});
    s.osRelease("centos", "7");
    expect(s.run("preflight.sh").err).toMatch(
      /system centos 7 is not supported: use Ubuntu 22.04, Ubuntu 24.04 or Debian 12/,
    );
    s.osRelease("debian", "12");
    s.writeEnv({ WEIGHTS_KIB: String(2 ** 40) });
    const r = s.run("preflight.sh");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /not enough disk: \/\S* has \d+ GiB free, the steps write weights 1048576 GiB \+ Python environment 0 GiB \+ caches 0 GiB = 1048576 GiB: grow the volume \(target.rootVolumeGiB\)/,
    );
  });
  it("counts the Python environment and the caches beside the weights, less what is already written", () => {
    const s = sandbox();
    const free = Number(
      spawnSync("df", ["-Pk", s.root], { encoding: "utf8" }).stdout.split("\n")[1]!.split(/\s+/)[3],
    );
    // Each alone fits; together they do not.
    const third = String(Math.floor(free / 2));
    s.writeEnv({ WEIGHTS_KIB: third, VENV_KIB: third, CACHES_KIB: third });
    expect(s.run("preflight.sh").err).toMatch(
      /not enough disk: .* the steps write weights \d+ GiB \+ Python environment \d+ GiB \+ caches \d+ GiB/,
    );
    s.writeEnv({ WEIGHTS_KIB: "1024", VENV_KIB: third, CACHES_KIB: "1024" });
    const r = s.run("preflight.sh");
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(
      /disk: \d+ GiB free on \S+, the steps write weights 0 GiB \+ Python environment \d+ GiB \+ caches 0 GiB/,
    );
  });
  it("without a driver, leaves the GPU check to after the driver step", () => {
    const s = sandbox();
    s.gpuDriver = false;
    expect(s.run("preflight.sh").out).toMatch(
      /nvidia-smi not found; the driver step will install the driver/,
    );
  });
});

describe("preflight: the root partition and filesystem grown to a larger disk", () => {
  // A 100 GiB root partition (nvme0n1p1, ext4) on a disk made 200 GiB, as EC2 leaves an EBS root
  // volume modified in place. The fakes answer in the tools' documented formats: findmnt -r and
  // lsblk -r (util-linux: raw, space-separated columns; lsblk -b: bytes), growpart (cloud-utils:
  // "CHANGE:"/"CHANGED:"/"NOCHANGE:" lines), resize2fs's progress lines; each records its call.
  const GiB = 1024 ** 3;
  const small = 4 * 1024 ** 2 + 106 * 1024 ** 2; // BIOS boot + EFI partitions
  function setup(
    root = "/dev/nvme0n1p1 ext4 /",
    device = "nvme0n1p1 part nvme0n1",
    nodeEnv: Record<string, string> = {},
  ) {
    const s = sandbox(single, "head", ADDR, nodeEnv);
    const disk = join(s.root, "disk");
    mkdirSync(disk, { recursive: true });
    const calls = join(s.root, "calls");
    const rec = `echo "$(basename "$0") $*" >>${calls}`;
    const path = fakeBin(s, {
      findmnt: `[[ "$*" == "-rn -v -o SOURCE,FSTYPE,FSROOT /" ]] || exit 1\necho '${root}'`,
      lsblk: [
        `case "$*" in`,
        ...(device
          ? [`  "-dnr -o NAME,TYPE,PKNAME ${root.split(" ")[0]}") echo '${device}' ;;`]
          : []),
        `  "-bnr -o TYPE,SIZE /dev/nvme0n1")`,
        `    echo "disk ${200 * GiB}"`,
        `    if [[ -e ${disk}/grown ]]; then echo "part ${200 * GiB - small - 1024 ** 2}"; else echo "part ${100 * GiB - small - 1024 ** 2}"; fi`,
        `    echo "part ${4 * 1024 ** 2}"; echo "part ${106 * 1024 ** 2}" ;;`,
        `  *) echo "lsblk: \${*: -1}: not a block device" >&2; exit 32 ;;`,
        `esac`,
      ].join("\n"),
      growpart: [
        rec,
        `if [[ -e ${disk}/grown ]]; then echo "NOCHANGE: partition 1 is size 419203039. it cannot be grown"; exit 1; fi`,
        `info="partition=1 start=227328 old: size=209485791 end=209713119 new: size=419203039 end=419430367"`,
        `if [[ $1 == --dry-run ]]; then echo "CHANGE: $info"; exit 0; fi`,
        `touch ${disk}/grown; echo "CHANGED: $info"`,
      ].join("\n"),
      resize2fs: [
        rec,
        `[[ -z \${FAIL_RESIZE:-} ]] || { echo "resize2fs: Permission denied to resize filesystem" >&2; exit 1; }`,
        `echo "resize2fs 1.46.5 (30-Dec-2021)"`,
        `echo "Filesystem at $1 is mounted on /; on-line resizing required"`,
        `echo "The filesystem on $1 is now 52400379 (4k) blocks long."`,
      ].join("\n"),
      xfs_growfs: `${rec}\necho "data blocks changed from 26214139 to 52400379"`,
    });
    const calls_ = () => (existsSync(calls) ? readFileSync(calls, "utf8") : "");
    return {
      s,
      run: (extra: Record<string, string> = {}) =>
        s.run("preflight.sh", [], { PATH: path, QWEN_VL_DRY_RUN: "0", ...extra }),
      calls: calls_,
      reset: () => rmSync(calls, { force: true }),
    };
  }

  it("an existing machine (no planned root volume): space after its root partition is its owner's, left alone", () => {
    // A hosts stack's node.env names no root volume (render.test checks it).
    const { run, calls } = setup(undefined, undefined, { ROOT_VOLUME_GIB: "" });
    const r = run();
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/root volume: an existing machine's partitions are left as they are/);
    expect(calls()).toBe("");
  });

  it("grows the partition, then the filesystem; a second run finds it full-size and changes nothing", () => {
    const { run, calls, reset } = setup();
    const r = run();
    expect(r.code, r.all).toBe(0);
    expect(calls()).toBe(
      "growpart --dry-run /dev/nvme0n1 1\ngrowpart /dev/nvme0n1 1\nresize2fs /dev/nvme0n1p1\n",
    );
    expect(r.out).toMatch(
      /changed: root partition \/dev\/nvme0n1p1 grown to the end of \/dev\/nvme0n1 \(\+100 GiB\)/,
    );
    expect(r.out).toMatch(/changed: root filesystem \(ext4\) on \/dev\/nvme0n1p1 grown/);
    // Measured after the grow: the disk check comes later in the same run.
    expect(r.out.indexOf("root filesystem (ext4)")).toBeLessThan(r.out.indexOf("disk: "));
    expect(result(r.out)).toBe("changed");
    reset();
    const again = run();
    expect(again.code, again.all).toBe(0);
    expect(again.out).toMatch(
      /root volume: \/dev\/nvme0n1p1 fills \/dev\/nvme0n1 \(200 GiB\): nothing to grow/,
    );
    expect(calls()).toBe("");
    expect(result(again.out)).toBe("unchanged");
  });

  it("a run cut between the partition and the filesystem: the next run grows the filesystem only", () => {
    const { run, calls, reset } = setup();
    const cut = run({ FAIL_RESIZE: "1" });
    expect(cut.code).toBe(1);
    expect(cut.err).toMatch(
      /FAILED: resize2fs \/dev\/nvme0n1p1 failed \(resize2fs: Permission denied to resize filesystem\): grow the filesystem by hand \(resize2fs \/dev\/nvme0n1p1\), then run the step again/,
    );
    reset();
    const next = run();
    expect(next.code, next.all).toBe(0);
    expect(next.out).toMatch(/the partition was grown by an earlier run; its filesystem next/);
    expect(calls()).toBe("resize2fs /dev/nvme0n1p1\n");
    reset();
    expect(result(run().out)).toBe("unchanged");
    expect(calls()).toBe("");
  });

  it("XFS: xfs_growfs on the mount point", () => {
    const { run, calls } = setup("/dev/nvme0n1p1 xfs /");
    const r = run();
    expect(r.code, r.all).toBe(0);
    expect(calls()).toMatch(/growpart \/dev\/nvme0n1 1\nxfs_growfs -d \/\n$/);
  });

  it("nothing to grow, and says why: a container's root (the lab), a bind mount, LVM, a whole disk, no device node", () => {
    const cases: [string, string, RegExp][] = [
      ["overlay overlay /", "", /\/ is overlay \(overlay\), not a block device \(a container\?\)/],
      [
        "/dev/nvme0n1p1 ext4 /var/lib/machines/head",
        "",
        /\/ is \/var\/lib\/machines\/head of \/dev\/nvme0n1p1 \(a bind mount: a container\?\)/,
      ],
      [
        "/dev/mapper/vg-root ext4 /",
        "vg-root lvm sda3",
        /\/dev\/mapper\/vg-root is an LVM volume: not grown here \(grow it with pvresize and lvextend --resizefs\)/,
      ],
      ["/dev/vda ext4 /", "vda disk ", /\/dev\/vda is a disk device, not a partition/],
      ["/dev/sdz1 ext4 /", "", /\/dev\/sdz1 is not a block device here \(a container\?\)/],
      ["/dev/nvme0n1p1 btrfs /", "nvme0n1p1 part nvme0n1", /btrfs on \/dev\/nvme0n1p1/],
    ];
    for (const [root, device, why] of cases) {
      const { run, calls } = setup(root, device);
      const r = run();
      expect(r.code, r.all).toBe(0);
      expect(r.out).toMatch(why);
      expect(calls()).toBe("");
      expect(result(r.out)).toBe("unchanged");
    }
  });

  it("growpart absent: cloud-guest-utils from the node's package sources first", () => {
    const { s, run } = setup();
    rmSync(join(s.root, "fake-bin", "growpart"));
    const r = run({ QWEN_VL_DRY_RUN: "1" });
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(
      /would run: apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends cloud-guest-utils\n[\s\S]*would run: growpart \/dev\/nvme0n1 1\n[\s\S]*would run: resize2fs \/dev\/nvme0n1p1/,
    );
  });
});

describe("driver", () => {
  it("new enough: nothing to install", () => {
    const s = sandbox();
    const r = s.run("driver.sh");
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/driver 580.95.05 ≥ required 580.65.06: nothing to install/);
    expect(result(r.out)).toBe("unchanged");
  });
  it("absent: installs the open modules from NVIDIA's repository for the system, then asks for a reboot", () => {
    const s = sandbox();
    s.gpuDriver = false;
    const r = s.run("driver.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/no working NVIDIA driver .*: installing/);
    expect(r.out).toMatch(
      /would run: curl -fsSL -o \/tmp\/cuda-keyring.deb https:\/\/developer.download.nvidia.com\/compute\/cuda\/repos\/ubuntu2204\/x86_64\/cuda-keyring_1.1-1_all.deb/,
    );
    expect(r.out).toMatch(/kernel modules: open \(ampere is Turing or newer\)/);
    expect(r.out).toMatch(/would run: apt-get -o DPkg::Lock::Timeout=600 install -y nvidia-open/);
    expect(r.out).toMatch(/would run: systemctl enable nvidia-persistenced/);
    expect(r.out).toMatch(/would run: touch .*reboot-required/);
    expect(r.out).not.toMatch(/fabricmanager/);
    expect(result(r.out)).toBe("changed");
  });
  it("too old: upgrades; on Debian 12 with contrib and the debian12 repository", () => {
    const s = sandbox();
    s.osRelease("debian", "12");
    s.fakeSmi({ DRIVER: "510.47.03" });
    const r = s.run("driver.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(r.out).toMatch(/driver 510.47.03 < required 580.65.06: upgrading/);
    expect(r.out).toMatch(/contrib/);
    expect(r.out).toMatch(/repos\/debian12\/x86_64/);
  });
  it("Volta takes the proprietary modules; NVSwitch boards get Fabric Manager", () => {
    const v100 = planStack({
      ...readStackFile("single-gpu").sections,
      target: { kind: "aws", region: "us-east-1", instanceType: "p3.2xlarge" },
      vllm: { version: "0.19.1", dtype: "half", maxPixels: 1003520, maxModelLen: 4096 },
    });
    const s = sandbox(v100);
    s.gpuDriver = false;
    const r = s.run("driver.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(r.out).toMatch(/kernel modules: proprietary \(volta predates Turing\)/);
    expect(r.out).toMatch(
      /would run: apt-get -o DPkg::Lock::Timeout=600 install -y cuda-drivers$/m,
    );
    // Held to R580, Volta's last branch: an unpinned cuda-drivers would not drive a V100.
    expect(r.out).toMatch(
      /would run: sh -c .*Pin: version %s\.\*.*Pin-Priority: 1001.* pin 580 \/etc\/apt\/preferences.d\/qwen-vl-nvidia-driver/,
    );
    expect(r.out).toMatch(/driver branch pinned to R580 \(the last branch for volta\)/);
    const large = planStack(readStackFile("large").sections);
    const l = sandbox(large);
    l.gpuDriver = false;
    expect(l.run("driver.sh", [], { QWEN_VL_DRY_RUN: "1" }).out).toMatch(
      /would run: apt-get -o DPkg::Lock::Timeout=600 install -y cuda-drivers-fabricmanager/,
    );
    l.gpuDriver = true;
    l.fakeSmi({ GPU_NAME: "NVIDIA H100 80GB HBM3", GPU_MIB: 81559, GPU_COUNT: 8 });
    expect(l.run("driver.sh").err).toMatch(/NVSwitch but Fabric Manager is not installed/);
    // Installed, but of another version than the driver (the fake driver reports 580.95.05).
    const fm = join(ROOT, "lab/fakes/fabricmanager");
    const path = `${join(ROOT, "lab/fakes")}:${fm}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`;
    const other = l.run("driver.sh", [], { PATH: path, FAKE_FM_VERSION: "550.40.07" });
    expect(other.err).toMatch(/Fabric Manager 550\.40\.07 does not match driver 580\.95\.05/);
    // The right version but no daemon (no systemd here): named too.
    const idle = l.run("driver.sh", [], { PATH: path, FAKE_FM_VERSION: "580.95.05" });
    expect(idle.err).toMatch(
      /Fabric Manager 580\.95\.05 is installed but nvidia-fabricmanager is not running/,
    );
  });
  it("after the reboot: clears the marker; still not loaded after a reboot: says what to check", () => {
    const s = sandbox();
    writeFileSync(join(s.state, "reboot-required"), "");
    const ok = s.run("driver.sh");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/changed: driver is loaded after the reboot/);
    expect(existsSync(join(s.state, "reboot-required"))).toBe(false);
    writeFileSync(join(s.state, "reboot-required"), "");
    s.fakeSmi({ BROKEN: 1 });
    const bad = s.run("driver.sh");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(
      /still not loaded after a reboot: check 'dmesg \| grep -i nvidia' and Secure Boot/,
    );
  });
  it("refuses instead of installing when provisioning.installDriver is false", () => {
    const s = sandbox();
    s.fakeSmi({ DRIVER: "470.82.01" });
    s.writeEnv({ INSTALL_DRIVER: "0" });
    expect(s.run("driver.sh").err).toMatch(
      /driver 470.82.01 < required 580.65.06 and provisioning.installDriver is false/,
    );
  });
});

describe("python-env", () => {
  it("refuses a system python3 older than the pinned vLLM's Requires-Python, before uv runs", () => {
    const s = sandbox(single, "head", ADDR, { VLLM_MIN_PYTHON: "3.99" });
    const r = s.run("python-env.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(
      /vLLM 0\.31\.0 needs Python ≥ 3\.99 \(its wheel's Requires-Python\); this system's python3 is 3\.\d+/,
    );
  });
});

describe("cuda", () => {
  it("accepts what the driver supports for the vLLM build, refuses older", () => {
    const s = sandbox();
    expect(s.run("cuda.sh").out).toMatch(
      /driver supports CUDA 13.0: ≥ 11.7 and runs vLLM's CUDA 13.0 wheels/,
    );
    s.fakeSmi({ CUDA: "11.4" });
    expect(s.run("cuda.sh").err).toMatch(/the driver supports CUDA 11.4 < 11.7/);
    s.fakeSmi({ CUDA: "11.8" });
    expect(s.run("cuda.sh").err).toMatch(
      /supports CUDA 11.8, but vLLM 0.31.0 wheels are built for CUDA 13.0/,
    );
  });
});

/** Executables standing in for the machine's own in one folder of the sandbox, put first on PATH. */
function fakeBin(s: Sandbox, files: Record<string, string>): string {
  const dir = join(s.root, "fake-bin");
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(files))
    writeFileSync(join(dir, name), `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`, {
      mode: 0o755,
    });
  return `${dir}:${FAKES}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`;
}

describe("apt helper: an interrupted dpkg is finished first (dpkg --configure -a)", () => {
  // The cuda step's toolkit install is one apt-get call; apt-get and dpkg are fakes that record
  // what they were asked (and, for dpkg, under which lock), in a dpkg folder of the sandbox.
  function setup() {
    const s = sandbox();
    s.writeEnv({ INSTALL_CUDA_TOOLKIT: "1" });
    const admin = join(s.root, "dpkg");
    mkdirSync(join(admin, "updates"), { recursive: true });
    const calls = join(s.root, "calls");
    const path = fakeBin(s, {
      "apt-get": `echo "apt-get $*" >>${calls}`,
      dpkg: [
        `case "$*" in`,
        `  --audit) [[ -e ${admin}/half-configured ]] && echo "The following packages are only half configured: cuda-toolkit-13-0" ;;`,
        `  *"--configure -a") echo "dpkg $* (frontend lock held: \${DPKG_FRONTEND_LOCKED:-no})" >>${calls}; rm -f ${admin}/updates/* ${admin}/half-configured ;;`,
        `  *) exit 2 ;;`,
        `esac`,
      ].join("\n"),
    });
    const env = { PATH: path, DPKG_ADMINDIR: admin, QWEN_VL_DRY_RUN: "0" };
    const calls_ = () => (existsSync(calls) ? readFileSync(calls, "utf8") : "");
    return { s, admin, env, calls: calls_, reset: () => rmSync(calls, { force: true }) };
  }

  it("a journal left in dpkg's updates folder: configured under the frontend lock before apt-get; a second run is quiet", () => {
    const { s, admin, env, calls, reset } = setup();
    writeFileSync(join(admin, "updates", "0003"), "");
    // Not a journal (apt's test: all digits): ignored.
    writeFileSync(join(admin, "updates", "tmp.i"), "");
    const r = s.run("cuda.sh", [], env);
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(
      /dpkg was interrupted \(its journal \S+\/updates\/0003 is left\): running dpkg --configure -a first/,
    );
    expect(calls()).toBe(
      "dpkg --force-confdef --force-confold --configure -a (frontend lock held: 1)\n" +
        "apt-get -o DPkg::Lock::Timeout=600 install -y cuda-toolkit-13-0\n",
    );
    expect(r.out).toMatch(/changed: dpkg's interrupted work completed/);
    reset();
    const again = s.run("cuda.sh", [], env);
    expect(again.code, again.all).toBe(0);
    expect(again.out).not.toMatch(/dpkg/);
    expect(calls()).toBe("apt-get -o DPkg::Lock::Timeout=600 install -y cuda-toolkit-13-0\n");
  });

  it("packages left half-configured (dpkg --audit) are finished too; nothing to finish: dpkg is never run", () => {
    const { s, admin, env, calls, reset } = setup();
    writeFileSync(join(admin, "half-configured"), "");
    const r = s.run("cuda.sh", [], env);
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/dpkg --audit names packages left half-installed/);
    expect(calls()).toMatch(/^dpkg --force-confdef --force-confold --configure -a/);
    reset();
    expect(s.run("cuda.sh", [], env).out).not.toMatch(/dpkg was interrupted/);
    expect(calls()).not.toMatch(/^dpkg/m);
  });

  it("waits for dpkg's frontend lock (bounded by APT_LOCK_TIMEOUT) and never runs dpkg under another's lock", async () => {
    const { s, admin, env, calls } = setup();
    writeFileSync(join(admin, "updates", "0001"), "");
    // Another apt holding the lock: an fcntl lock on lock-frontend, as apt and dpkg take it.
    const holder = await startListening("python3", [
      "-c",
      `import fcntl, os, time\nfd = os.open(${JSON.stringify(join(admin, "lock-frontend"))}, os.O_RDWR | os.O_CREAT)\nfcntl.lockf(fd, fcntl.LOCK_EX)\nprint("LISTENING 0", flush=True)\ntime.sleep(120)`,
    ]);
    try {
      const r = s.run("cuda.sh", [], { ...env, APT_LOCK_TIMEOUT: "2" });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/lock-frontend is still held after 2 s/);
      expect(r.err).toMatch(
        /FAILED: dpkg --configure -a failed: run it on the node as root, fix what it names, then run the step again/,
      );
      expect(calls()).toBe("");
    } finally {
      await holder.stop();
    }
    const r = s.run("cuda.sh", [], env);
    expect(r.code, r.all).toBe(0);
    expect(calls()).toMatch(/^dpkg .*--configure -a \(frontend lock held: 1\)\napt-get/);
  });
});

describe("monitoring: the DCGM exporter on GPU nodes", () => {
  it("a GPU present: NVIDIA's repository, DCGM for the driver's CUDA major, the exporter package under our drop-in", () => {
    const s = sandbox();
    s.fakeSmi({ DRIVER: "550.54.15", CUDA: "12.4" });
    const device = join(s.root, "nvidiactl");
    writeFileSync(device, "");
    const r = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1", QWEN_VL_NVIDIA_DEVICE: device });
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(
      /would run: curl -fsSL -o \/tmp\/cuda-keyring.deb https:\/\/developer.download.nvidia.com\/compute\/cuda\/repos\/ubuntu2204\/x86_64\/cuda-keyring_1.1-1_all.deb/,
    );
    expect(r.out).toMatch(
      /would run: apt-get -o DPkg::Lock::Timeout=600 update -qq\n[\s\S]*would run: apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends datacenter-gpu-manager-4-cuda12\n/,
    );
    expect(r.out).toMatch(
      /would run: apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends datacenter-gpu-manager-exporter\n/,
    );
    expect(r.out).toMatch(
      /would run: install -D -m 0644 \S+\/rendered\/nvidia-dcgm-exporter.conf \/etc\/systemd\/system\/nvidia-dcgm-exporter.service.d\/qwen-vl.conf/,
    );
    expect(r.out).toMatch(/changed: enabled nvidia-dcgm-exporter/);
    const dropIn = readFileSync(join(s.home, "rendered", "nvidia-dcgm-exporter.conf"), "utf8");
    expect(dropIn).toMatch(/^ExecStart=\n/m);
    expect(dropIn).toMatch(/--address :9400$/m);
    expect(result(r.out)).toBe("changed");
  });
  it("Grafana: the provisioned datasource has a fixed uid and vLLM's dashboard is bound to it (its export names ${DS_PROMETHEUS})", () => {
    const withGrafana = planStack({
      ...readStackFile("single-gpu").sections,
      monitoring: { enabled: true, grafana: true, dcgmExporter: false },
    });
    const s = sandbox(withGrafana);
    const r = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(r.code, r.all).toBe(0);
    const ds = readFileSync(join(s.home, "rendered", "grafana-datasource.yaml"), "utf8");
    expect(ds).toMatch(/^ {4}uid: qwen-vl-prometheus$/m);
    expect(r.out).toMatch(
      /would run: sed -i s\/\$\{DS_PROMETHEUS\}\/qwen-vl-prometheus\/g \/var\/lib\/grafana\/dashboards\/vllm.json/,
    );
  });
  it("Grafana: on loopback with a password generated on the node, root-only, kept across runs and set in a database made before it; never printed", () => {
    const withGrafana = planStack({
      ...readStackFile("single-gpu").sections,
      monitoring: { enabled: true, grafana: true, dcgmExporter: false },
    });
    const s = sandbox(withGrafana);
    const pw = join(s.etc, "grafana-admin-password");
    const applied = join(s.state, "grafana-admin-password.applied");
    const where = `password: sudo cat ${pw}`;
    // First run: generated from the kernel's CSPRNG into the root-only file, the config and the
    // unit's credential installed, then the CLI sets it (a database may predate it).
    const first = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(first.code, first.all).toBe(0);
    expect(first.out).toMatch(
      /would run: sh -c umask 077 && head -c 48 \/dev\/urandom .* sh \S+\n/,
    );
    expect(first.out).toContain(` sh ${pw}\n`);
    expect(first.out).toMatch(/changed: Grafana admin password generated in \S+ \(root only\)/);
    expect(first.out).toMatch(
      /would run: install -D -m 0644 \S+\/rendered\/grafana.ini \/etc\/grafana\/grafana.ini\n/,
    );
    expect(first.out).toMatch(
      /would run: install -D -m 0644 \S+\/rendered\/grafana-server.conf \/etc\/systemd\/system\/grafana-server.service.d\/qwen-vl.conf\n[^\n]*\n?[^\n]*would run: systemctl daemon-reload/,
    );
    expect(first.out).toMatch(
      /would run: systemctl restart grafana-server\n[\s\S]*would run: env GF_SECURITY_ADMIN_PASSWORD=\$__file\{\S+\/grafana-admin-password\} grafana-cli admin reset-admin-password --password-from-stdin\n/,
    );
    expect(first.out).toContain(where);
    // What the first run leaves: the password (root only) and the marker that the CLI set it.
    writeFileSync(pw, "Xq3-not-a-real-password", { mode: 0o600 });
    const pending = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(pending.out).toMatch(/Grafana admin password kept \(\S+grafana-admin-password\)/);
    expect(pending.out).not.toMatch(/urandom/);
    // Cut before the CLI ran: it runs now.
    expect(pending.out).toMatch(/would run: env \S+ grafana-cli admin reset-admin-password/);
    writeFileSync(applied, "");
    const again = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1" });
    expect(again.code, again.all).toBe(0);
    expect(again.out).not.toMatch(/reset-admin-password|urandom|Grafana admin password generated/);
    expect(again.out).toContain(where);
    for (const r of [first, pending, again]) expect(r.all).not.toContain("Xq3-not-a-real-password");
  });
  it("new_secret (lib.sh), which makes Grafana's password: a root-only file of 40 random letters and digits, new each time", () => {
    const s = sandbox();
    const make = (path: string) =>
      spawnSync(
        "bash",
        ["-c", `source "$1/lib.sh"; new_secret "$2"`, "_", join(s.home, "bin"), path],
        {
          encoding: "utf8",
          env: { PATH: process.env["PATH"], HOME: s.root, QWEN_VL_DRY_RUN: "0" },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
    const a = join(s.root, "a");
    const b = join(s.root, "b");
    expect(make(a).status).toBe(0);
    expect(make(b).status).toBe(0);
    const [pa, pb] = [readFileSync(a, "utf8"), readFileSync(b, "utf8")];
    expect(pa).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(pa).not.toBe(pb);
    expect(statSync(a).mode & 0o777).toBe(0o600);
    expect(existsSync(`${a}.tmp`)).toBe(false);
    // Printed nowhere.
    const r = make(join(s.root, "c"));
    expect(r.stdout + r.stderr).toBe("");
  });
  describe("grafana_admin_password (lib.sh) against a fake Grafana API and a fake grafana-cli", () => {
    // The fake Grafana answers GET /api/user 200 to admin with the password in `valid`, 401
    // otherwise (Grafana's HTTP API: basic auth); the fake grafana-cli does what Grafana's does
    // (the new password from standard input, --password-from-stdin), and records its call.
    let grafana: Started;
    let dir: string;
    const valid = () => join(dir, "valid");
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "qwen-vl-grafana-"));
      grafana = await startListening("python3", [
        "-c",
        [
          "import base64, http.server, sys",
          "valid = sys.argv[1]",
          "class H(http.server.BaseHTTPRequestHandler):",
          "    def do_GET(self):",
          "        auth = self.headers.get('Authorization', '')",
          "        user = base64.b64decode(auth[6:]).decode() if auth.startswith('Basic ') else ''",
          "        ok = self.path == '/api/user' and user == 'admin:' + open(valid).read()",
          "        self.send_response(200 if ok else 401)",
          "        self.end_headers()",
          "    def log_message(self, *a):",
          "        pass",
          "s = http.server.HTTPServer(('127.0.0.1', 0), H)",
          "print('LISTENING', s.server_port, flush=True)",
          "s.serve_forever()",
        ].join("\n"),
        join(dir, "valid"),
      ]);
    });
    afterAll(async () => {
      await grafana.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    function setup(current: string) {
      const s = sandbox();
      s.writeEnv({ GRAFANA_PORT: String(grafana.port) });
      writeFileSync(valid(), current);
      const pw = join(s.etc, "grafana-admin-password");
      writeFileSync(pw, "Gen3ratedPassw0rdForTheTest", { mode: 0o600 });
      const marker = join(s.state, "grafana-admin-password.applied");
      const calls = join(s.root, "calls");
      const path = fakeBin(s, {
        "grafana-cli": [
          `echo "grafana-cli $* GF_SECURITY_ADMIN_PASSWORD=\${GF_SECURITY_ADMIN_PASSWORD:-}" >>${calls}`,
          `[[ "$*" == "admin reset-admin-password --password-from-stdin" ]] || exit 2`,
          `IFS= read -r new || [[ -n $new ]]`,
          `printf %s "$new" >${valid()}`,
        ].join("\n"),
      });
      const run = () =>
        spawnSync(
          "bash",
          [
            "-c",
            `source "$1/lib.sh"; load_node_env; grafana_admin_password "$2" "$3"; finish`,
            "_",
            join(s.home, "bin"),
            pw,
            marker,
          ],
          {
            encoding: "utf8",
            env: {
              PATH: path,
              HOME: s.root,
              QWEN_VL_ETC: s.etc,
              QWEN_VL_STEP: "monitoring",
              QWEN_VL_DRY_RUN: "0",
            },
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
      const calls_ = () => (existsSync(calls) ? readFileSync(calls, "utf8") : "");
      return { pw, marker, run, calls: calls_ };
    }

    it("a database made before the password (admin/admin): Grafana's CLI sets it, from the root-only file; asked once", () => {
      const { pw, marker, run, calls } = setup("admin");
      const r = run();
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(calls()).toBe(
        `grafana-cli admin reset-admin-password --password-from-stdin GF_SECURITY_ADMIN_PASSWORD=$__file{${pw}}\n`,
      );
      expect(readFileSync(valid(), "utf8")).toBe("Gen3ratedPassw0rdForTheTest");
      expect(r.stdout).toMatch(
        /changed: Grafana's admin account took admin\/admin \(its database predates the password\): set to the generated one/,
      );
      expect(existsSync(marker)).toBe(true);
      expect(r.stdout + r.stderr).not.toContain("Gen3ratedPassw0rdForTheTest");
      const again = run();
      expect(again.stdout).toMatch(/RESULT unchanged/);
      expect(calls().split("\n").filter(Boolean)).toHaveLength(1);
    });

    it("a database Grafana made with the generated password: nothing to set; a site's own password: left as it is, and said so", () => {
      const fresh = setup("Gen3ratedPassw0rdForTheTest");
      const r = fresh.run();
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Grafana's admin account takes the generated password/);
      expect(r.stdout).toMatch(/RESULT unchanged/);
      expect(fresh.calls()).toBe("");
      const site = setup("the-site's-own");
      const t = site.run();
      expect(t.status, t.stdout + t.stderr).toBe(0);
      expect(t.stdout).toMatch(
        /takes neither the generated password nor admin\/admin \(a site's own\?\): left as it is/,
      );
      expect(site.calls()).toBe("");
      expect(readFileSync(valid(), "utf8")).toBe("the-site's-own");
    });
  });
  it("the driver reports CUDA 13: DCGM for CUDA 13; no GPU device: skipped, saying why", () => {
    const s = sandbox();
    const device = join(s.root, "nvidiactl");
    writeFileSync(device, "");
    s.fakeSmi({ DRIVER: "580.65.06", CUDA: "13.0" });
    const r = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1", QWEN_VL_NVIDIA_DEVICE: device });
    expect(r.out).toMatch(/datacenter-gpu-manager-4-cuda13\n/);
    const none = s.run("monitoring.sh", [], {
      QWEN_VL_DRY_RUN: "1",
      QWEN_VL_NVIDIA_DEVICE: join(s.root, "absent"),
    });
    expect(none.code, none.all).toBe(0);
    expect(none.out).toMatch(/no GPU device \(\S+absent\): DCGM exporter skipped/);
    expect(none.out).not.toMatch(/datacenter-gpu-manager/);
  });
  it("a device but a driver that does not answer: says to run the driver step first", () => {
    const s = sandbox();
    const device = join(s.root, "nvidiactl");
    writeFileSync(device, "");
    s.fakeSmi({ BROKEN: 1 });
    const r = s.run("monitoring.sh", [], { QWEN_VL_DRY_RUN: "1", QWEN_VL_NVIDIA_DEVICE: device });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /FAILED: nvidia-smi does not report a CUDA version: run the driver step first/,
    );
  });
});

describe("weights from a mirror (aria2c), verified by sha256", () => {
  let mirror: Started;
  let mirrorDir: string;
  let log: string;
  const repo = single.model.id;
  const rev = single.model.revision;
  beforeAll(async () => {
    mirrorDir = mkdtempSync(join(tmpdir(), "qwen-vl-mirror-"));
    log = join(mirrorDir, "requests.log");
    const gen = spawnSync(
      "python3",
      [
        join(ROOT, "lab/make_model.py"),
        "--out",
        join(mirrorDir, "m"),
        "--repo",
        repo,
        "--revision",
        rev,
        "--shards",
        "3",
        "--shard-mib",
        "8",
      ],
      { encoding: "utf8" },
    );
    expect(gen.status, gen.stderr).toBe(0);
    mirror = await startListening("python3", [
      join(ROOT, "lab/mirror_server.py"),
      "--root",
      mirrorDir,
      "--log",
      log,
    ]);
  });
  afterAll(async () => {
    await mirror.stop();
    rmSync(mirrorDir, { recursive: true, force: true });
  });
  const mirrored = () =>
    sandbox(single, "head", ADDR, {
      WEIGHTS_SOURCE: "mirror",
      MIRROR_URL: `http://127.0.0.1:${mirror.port}/m`,
    });
  const requests = () =>
    readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map(
        (l) => JSON.parse(l) as { path: string; start?: number; bytes?: number; status: number },
      );

  it("missing → fetched and verified; complete → nothing to do", () => {
    const s = mirrored();
    const first = s.run("weights.sh");
    expect(first.code, first.all).toBe(0);
    expect(first.out).toMatch(/6 file\(s\) missing or not matching the manifest/);
    expect(first.out).toMatch(
      /changed: weights of Qwen\/Qwen2-VL-7B-Instruct@a7a06a1c\w+ fetched and verified/,
    );
    // Hashed once: aria2c checked each shard against the manifest's sha256 as it fetched it, so the
    // verification stamps them without reading them again (only the small git-sha1 files).
    const report = JSON.parse(readFileSync(join(s.state, "weights-report.json"), "utf8"));
    expect(report.ok).toBe(true);
    const manifest = JSON.parse(readFileSync(join(mirrorDir, "m", "manifest.json"), "utf8")) as {
      files: { path: string; size: number; sha256?: string }[];
    };
    const lfs = manifest.files.filter((f) => f.sha256);
    expect(report.checkedByAria2c).toBe(lfs.length);
    expect(report.hashedBytes).toBe(
      manifest.files.filter((f) => !f.sha256).reduce((a, f) => a + f.size, 0),
    );
    expect(first.out).toMatch(new RegExp(`${lfs.length} checked by aria2c as they were fetched`));
    const second = s.run("weights.sh");
    expect(second.out).toMatch(/present and verified: nothing to fetch/);
    expect(result(second.out)).toBe("unchanged");
  });

  it("a mirror serving a corrupted shard: aria2c's sha256 check refuses it, nothing is stamped", () => {
    const shard = join(mirrorDir, "m", "model-00003-of-00003.safetensors");
    const saved = readFileSync(shard);
    try {
      const fd = openSync(shard, "r+");
      writeSync(fd, Buffer.from("bitrot!!"), 0, 8, 1 << 20);
      closeSync(fd);
      const s = mirrored();
      const r = s.run("weights.sh");
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/aria2c could not fetch every file/);
      expect(existsSync(join(s.modelDir, ".qwen-vl", "verified.json"))).toBe(false);
    } finally {
      writeFileSync(shard, saved);
    }
  });

  it("one file corrupted → named in the report, the unit's start check refuses; --refetch-bad fetches only that file", () => {
    const s = mirrored();
    expect(s.run("weights.sh").code).toBe(0);
    const victim = join(s.modelDir, "model-00002-of-00003.safetensors");
    const fd = openSync(victim, "r+");
    writeSync(fd, Buffer.from("corrupt!"), 0, 8, 4096);
    closeSync(fd);
    // What qwen-vl-vllm.service runs before every start:
    const quick = s.run("weights-check.sh", ["--quick"]);
    expect(quick.code).toBe(1);
    expect(quick.err).toMatch(/BAD model-00002-of-00003.safetensors: sha256 mismatch/);
    const report = JSON.parse(readFileSync(join(s.state, "weights-report.json"), "utf8"));
    expect(report.bad.map((b: { path: string }) => b.path)).toEqual([
      "model-00002-of-00003.safetensors",
    ]);
    const refused = s.run("weights.sh");
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /model-00002-of-00003.safetensors is complete but does not match the manifest .* --refetch-bad/,
    );
    const before = requests().length;
    const repaired = s.run("weights.sh", ["--refetch-bad"]);
    expect(repaired.code, repaired.all).toBe(0);
    expect(repaired.out).toMatch(/removing bad file model-00002-of-00003.safetensors/);
    const fetched = requests()
      .slice(before)
      .filter((r) => r.path.endsWith(".safetensors") && r.status < 300);
    expect(new Set(fetched.map((r) => r.path))).toEqual(
      new Set(["m/model-00002-of-00003.safetensors"]),
    );
  });

  it("an interrupted download resumes where it stopped instead of starting over", async () => {
    // The interruption by design: a mirror that sends 3 MiB of the second shard's first download,
    // then stalls; the run is cut once the mirror logged the stall, not after a delay.
    const stallLog = join(mirrorDir, "stall.log");
    rmSync(stallLog, { force: true });
    const shard = "model-00002-of-00003.safetensors";
    const stalling = await startListening("python3", [
      join(ROOT, "lab/mirror_server.py"),
      ...["--root", mirrorDir, "--stall-path", shard, "--stall-after", String(3 << 20)],
      ...["--log", stallLog],
    ]);
    const stallRequests = () =>
      (existsSync(stallLog) ? readFileSync(stallLog, "utf8").trim().split("\n") : [])
        .filter(Boolean)
        .map(
          (l) =>
            JSON.parse(l) as {
              path: string;
              start?: number;
              bytes?: number;
              status?: number;
              event?: string;
            },
        );
    try {
      const s = sandbox(single, "head", ADDR, {
        WEIGHTS_SOURCE: "mirror",
        MIRROR_URL: `http://127.0.0.1:${stalling.port}/m`,
      });
      const stalled = async () => {
        for (let i = 0; i < 600; i++) {
          if (stallRequests().some((r) => r.event === "stalled")) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error("the mirror never stalled");
      };
      const cut = await s.interrupt("weights.sh", stalled, { ARIA2_SPLIT: "1", ARIA2_JOBS: "1" });
      expect(cut.code).not.toBe(0);
      const partial = shard;
      expect(existsSync(join(s.modelDir, `${partial}.aria2`)), "aria2's control file").toBe(true);
      const kept = statSync(join(s.modelDir, partial)).size;
      const resumed = s.run("weights.sh", [], { ARIA2_SPLIT: "1", ARIA2_JOBS: "1" });
      expect(resumed.code, resumed.all).toBe(0);
      // The server logs a request once it has sent it: wait (bounded, 30 s: a loaded machine is slow
      // to schedule the server thread) for the resumed range request.
      let again: ReturnType<typeof stallRequests> = [];
      for (let i = 0; i < 600 && again.length === 0; i++) {
        again = stallRequests().filter((r) => r.path === `m/${partial}` && r.status === 206);
        if (again.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(again.length, "a Range request for the partial file").toBeGreaterThan(0);
      expect(Math.min(...again.map((r) => r.start ?? 0))).toBeGreaterThan(0);
      const total = statSync(join(mirrorDir, "m", partial)).size;
      const resent = again.reduce((a, r) => a + (r.bytes ?? 0), 0);
      expect(resent).toBeLessThan(total);
      expect(kept).toBeGreaterThan(0);
    } finally {
      await stalling.stop();
    }
  }, 120_000);

  it("a missing mirror is a clear error", () => {
    const s = sandbox(single, "head", ADDR, {
      WEIGHTS_SOURCE: "mirror",
      MIRROR_URL: `http://127.0.0.1:${mirror.port}/nope`,
    });
    expect(s.run("weights.sh").err).toMatch(
      /cannot fetch http:\/\/127.0.0.1:\d+\/nope\/manifest.json: check provisioning.mirrorUrl/,
    );
  });

  it("the rope_scaling fix is applied for vLLM < 0.6.3 and keeps the weights verifiable", () => {
    const s = sandbox(single, "head", ADDR, {
      WEIGHTS_SOURCE: "mirror",
      MIRROR_URL: `http://127.0.0.1:${mirror.port}/m`,
      ROPE_FIX: "1",
      VLLM_VERSION: "0.6.2",
    });
    const r = s.run("weights.sh");
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/changed: config.json rope_scaling fixed for vLLM 0.6.2/);
    const cfg = JSON.parse(readFileSync(join(s.modelDir, "config.json"), "utf8"));
    expect(cfg.rope_scaling).toMatchObject({
      type: "mrope",
      rope_type: "mrope",
      mrope_section: [16, 24, 24],
    });
    const again = s.run("weights.sh");
    expect(result(again.out)).toBe("unchanged");
  });
});

describe("verify-weights", () => {
  it("--quick is not fooled by a byte changed in place with its mtime put back (touch -r): ctime and inode are in the stamp", () => {
    const dir = mkdtempSync(join(tmpdir(), "qwen-vl-verify-"));
    try {
      spawnSync("python3", [
        join(ROOT, "lab/make_model.py"),
        ...["--out", dir, "--repo", "r", "--revision", "0".repeat(40)],
        ...["--shards", "2", "--shard-mib", "1"],
      ]);
      const quick = () =>
        spawnSync(
          "python3",
          [
            join(ROOT, "provisioning/scripts/verify-weights.py"),
            "--quick",
            ...["--manifest", join(dir, "manifest.json"), "--dir", dir],
            ...["--report", join(dir, "r.json"), "--stamp", join(dir, "stamp.json")],
          ],
          { encoding: "utf8" },
        );
      expect(quick().status).toBe(0);
      const shard = join(dir, "model-00001-of-00002.safetensors");
      const before = statSync(shard, { bigint: true });
      expect(spawnSync("touch", ["-r", shard, join(dir, "ref")]).status).toBe(0);
      const fd = openSync(shard, "r+");
      writeSync(fd, Buffer.from("bitrot!!"), 0, 8, 4096);
      closeSync(fd);
      expect(spawnSync("touch", ["-r", join(dir, "ref"), shard]).status).toBe(0);
      expect(statSync(shard, { bigint: true }).mtimeNs).toBe(before.mtimeNs);
      expect(statSync(shard, { bigint: true }).size).toBe(before.size);
      const r = quick();
      expect(r.status, r.stdout + r.stderr).toBe(1);
      const report = JSON.parse(readFileSync(join(dir, "r.json"), "utf8"));
      expect(report.bad.map((b: { path: string }) => b.path)).toEqual([
        "model-00001-of-00002.safetensors",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names missing files and size mismatches, and checks small files by git blob sha1", () => {
    const dir = mkdtempSync(join(tmpdir(), "qwen-vl-verify-"));
    try {
      spawnSync("python3", [
        join(ROOT, "lab/make_model.py"),
        "--out",
        dir,
        "--repo",
        "r",
        "--revision",
        "0".repeat(40),
        "--shards",
        "2",
        "--shard-mib",
        "1",
      ]);
      const verify = () =>
        spawnSync(
          "python3",
          [
            join(ROOT, "provisioning/scripts/verify-weights.py"),
            "--manifest",
            join(dir, "manifest.json"),
            "--dir",
            dir,
            "--report",
            join(dir, "r.json"),
          ],
          { encoding: "utf8" },
        );
      expect(verify().status).toBe(0);
      appendFileSync(join(dir, "tokenizer_config.json"), " ");
      truncateSync(join(dir, "model-00001-of-00002.safetensors"), 100);
      rmSync(join(dir, "model-00002-of-00002.safetensors"));
      writeFileSync(
        join(dir, "config.json"),
        readFileSync(join(dir, "config.json"), "utf8").replace("qwen2_vl", "qwen2_vX"),
      );
      const r = verify();
      expect(r.status).toBe(1);
      const bad = Object.fromEntries(
        JSON.parse(readFileSync(join(dir, "r.json"), "utf8")).bad.map(
          (b: { path: string; status: string }) => [b.path, b.status],
        ),
      );
      expect(bad).toEqual({
        "config.json": "git-sha1 mismatch",
        "tokenizer_config.json": "size",
        "model-00001-of-00002.safetensors": "size",
        "model-00002-of-00002.safetensors": "missing",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("connectivity gate", () => {
  let listening: Server;
  let openPort = 0;
  beforeAll(async () => {
    listening = createServer((c) => c.end());
    await new Promise<void>((r) => listening.listen(0, "127.0.0.1", () => r()));
    openPort = (listening.address() as { port: number }).port;
  });
  afterAll(() => listening.close());

  it("reports the failing pair and port", () => {
    const multi = planStack(readStackFile("multi-gpu").sections);
    const s = sandbox(multi, "worker1", { head: "127.0.0.1", worker1: "127.0.0.2" });
    const closed = openPort === 65535 ? 65534 : openPort + 1;
    s.writeEnv({ CHECK_TARGETS: `head:127.0.0.1:${openPort} head:127.0.0.1:${closed}` });
    const r = s.run("connectivity.sh");
    expect(r.code).toBe(1);
    expect(r.out).toContain(`ok worker1 (127.0.0.2) -> head (127.0.0.1):${openPort}`);
    expect(r.out).toContain(`FAIL worker1 (127.0.0.2) -> head (127.0.0.1):${closed}`);
    expect(r.err).toContain(`cannot reach worker1->head:${closed}`);
    s.writeEnv({ CHECK_TARGETS: `head:127.0.0.1:${openPort}` });
    expect(s.run("connectivity.sh").code).toBe(0);
  });
});

describe("connectivity gate: NCCL all-reduce with vLLM's environment (nccl-check.py on the FAKE torch)", () => {
  const large = planStack(readStackFile("large").sections, { stack: "large" });
  const multi = planStack(readStackFile("multi-gpu").sections, { stack: "multi-gpu" });
  /** A node with a GPU device and vLLM's venv whose python sees the FAKE torch (lab/fakes/fake_torch). */
  function withGpus(p = large, node = "head", extra: Record<string, string> = {}) {
    const s = sandbox(p, node, { head: "10.0.0.10", worker1: "10.0.0.11" });
    const device = join(s.root, "nvidiactl");
    writeFileSync(device, "");
    const venvBin = join(s.home, "venv", "bin");
    mkdirSync(venvBin, { recursive: true });
    writeFileSync(
      join(venvBin, "python"),
      `#!/bin/sh\nPYTHONPATH=${join(FAKES, "fake_torch")} exec python3 "$@"\n`,
      { mode: 0o755 },
    );
    return { s, env: { QWEN_VL_NVIDIA_DEVICE: device, ...extra } };
  }
  it("single 8-GPU node: every value checked at 1 GiB over all GPUs, passes above the NVSwitch floor", () => {
    const { s, env } = withGpus(large, "head", { FAKE_BUSBW: "231.41" });
    const r = s.run("connectivity.sh", [], env);
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/single node: no other member to reach/);
    expect(r.out).toMatch(
      /NCCL all-reduce bus bandwidth 231.41 GB\/s across 8 GPUs on 1 node\(s\) ≥ 100 GB\/s, every value right/,
    );
    expect(result(r.out)).toBe("unchanged");
  });
  it("fails naming the numbers below the floor, on wrong values, and on an NCCL error", () => {
    const slow = withGpus(large, "head", { FAKE_BUSBW: "12.5" });
    const r = slow.s.run("connectivity.sh", [], slow.env);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /FAILED: NCCL all-reduce bus bandwidth 12.5 GB\/s across 8 GPUs on 1 node\(s\) < 100 GB\/s expected for these links: check nvidia-smi topo -m, Fabric Manager/,
    );
    const wrong = withGpus(large, "head", { FAKE_WRONG: "3" });
    expect(wrong.s.run("connectivity.sh", [], wrong.env).err).toMatch(
      /FAILED: NCCL all-reduce across 8 GPUs returned 24 wrong values/,
    );
    const broken = withGpus(large, "head", {
      FAKE_NCCL_ERROR: "NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error",
    });
    expect(broken.s.run("connectivity.sh", [], broken.env).err).toMatch(
      /FAILED: NCCL all-reduce across 8 GPUs failed \(RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error\): run it again with NCCL_DEBUG=INFO/,
    );
    // Fewer devices than the plan's GPUs: the rank without a GPU fails, named.
    const short = withGpus(large, "head", { FAKE_GPUS: "4" });
    expect(short.s.run("connectivity.sh", [], short.env).err).toMatch(
      /invalid device ordinal [4-7]/,
    );
  });
  it("multi-node: the head runs it across the replica's GPUs through Ray with the network's floor; workers leave it to the head", () => {
    const worker = withGpus(multi, "worker1");
    worker.s.writeEnv({ CHECK_TARGETS: "" });
    expect(worker.s.run("connectivity.sh", [], worker.env).out).toMatch(
      /NCCL all-reduce: the head runs it across the replica's 8 GPUs/,
    );
    const head = withGpus(multi, "head");
    head.s.writeEnv({ CHECK_TARGETS: "" });
    const r = head.s.run("connectivity.sh", [], head.env);
    // No Ray here: the attempt through Ray is what fails, with the address it used.
    expect(r.err).toMatch(
      /FAILED: NCCL all-reduce across 8 GPUs failed \(.*\): .*nccl-check.py --gpus 8 --ray 10\.0\.0\.10:6379/,
    );
    expect(readFileSync(join(head.s.etc, "node.env"), "utf8")).toMatch(/NCCL_MIN_BUSBW_GBPS=0.4\n/);
  });
  it("stands aside on a re-run while vLLM serves (its GPUs are taken)", () => {
    const { s, env } = withGpus(large, "head", { FAKE_NCCL_ERROR: "must not run" });
    const bin = join(s.root, "systemctl-serving");
    mkdirSync(bin);
    // A systemd that says qwen-vl-vllm is active.
    writeFileSync(
      join(bin, "systemctl"),
      '#!/bin/sh\n[ "$1 $2 $3" = "is-active --quiet qwen-vl-vllm" ] && exit 0\nexit 3\n',
      { mode: 0o755 },
    );
    const r = s.run("connectivity.sh", [], {
      ...env,
      PATH: `${bin}:${FAKES}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    });
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/NCCL all-reduce skipped: vLLM is serving on these GPUs/);
  });
  it("skips, saying why: no GPU device, one GPU; verify checks ports only (the GPUs are vLLM's)", () => {
    const { s, env } = withGpus(large, "head", { FAKE_NCCL_ERROR: "must not run" });
    const ports = s.run("connectivity.sh", ["--ports-only"], env);
    expect(ports.code, ports.all).toBe(0);
    expect(ports.all).not.toMatch(/NCCL/);
    expect(
      s.run("connectivity.sh", [], { ...env, QWEN_VL_NVIDIA_DEVICE: "/nonexistent" }).out,
    ).toMatch(/NCCL all-reduce skipped: no GPU device/);
    const one = sandbox();
    const device = join(one.root, "nvidiactl");
    writeFileSync(device, "");
    expect(one.run("connectivity.sh", [], { QWEN_VL_NVIDIA_DEVICE: device }).out).toMatch(
      /NCCL all-reduce skipped: one GPU on this node/,
    );
  });
});

/** The FAKE vLLM (lab/fakes) serving the single-gpu stack's model name on a free loopback port. */
function fakeEngine(modelDir: string, env: Record<string, string> = {}) {
  return startListening(
    "python3",
    [
      ...["-m", "fake_vllm", "serve", modelDir],
      ...["--served-model-name", single.model.servedModelName],
      ...["--host", "127.0.0.1", "--port", "0", "--limit-mm-per-prompt", '{"image":4}'],
    ],
    { ...process.env, PYTHONPATH: FAKES, FAKE_VLLM_STARTUP_SECONDS: "0", ...env },
  );
}

describe("readiness gate against the fake engine", () => {
  it("rejects an engine that answers nonsense: one token repeated (fp16 overflow), or not the image's colour", async () => {
    for (const [answer, why] of [
      ["!!!!!!!!!!!!!!!!", /the model answered '!!!!!!!!!!!!!!!!': one token repeated, not words/],
      ["! ! ! ! ! !", /one token repeated, not words/],
      [
        "The image is blue.",
        /asked the main colour of a solid red image, the model answered 'The image is blue\.'/,
      ],
    ] as const) {
      const s = sandbox();
      mkdir(s.modelDir);
      const engine = await fakeEngine(s.modelDir, { FAKE_VLLM_ANSWER: answer });
      try {
        s.writeEnv({ API_PORT: String(engine.port), READINESS_TIMEOUT: "20" });
        const r = s.run("readiness.sh");
        expect(r.code, r.all).toBe(1);
        expect(r.err).toMatch(why);
      } finally {
        await engine.stop();
      }
    }
  });

  it("passes on a real image answer; fails on a wrong model name and on a server that never comes up", async () => {
    const s = sandbox();
    mkdir(s.modelDir);
    const engine = await fakeEngine(s.modelDir);
    try {
      s.writeEnv({ API_PORT: String(engine.port), READINESS_TIMEOUT: "20" });
      const ok = s.run("readiness.sh");
      expect(ok.code, ok.all).toBe(0);
      expect(ok.out).toMatch(/ready: image\+text answered in [\d.]+ s: 'red/);
      s.writeEnv({ SERVED_MODEL_NAME: "someone-else" });
      const wrong = s.run("readiness.sh");
      expect(wrong.code).toBe(1);
      expect(wrong.err).toMatch(/the image request got HTTP 404/);
    } finally {
      await engine.stop();
    }
    s.writeEnv({ READINESS_TIMEOUT: "3", SERVED_MODEL_NAME: single.model.servedModelName });
    const down = s.run("readiness.sh");
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/\/health not healthy after 3 s/);
  });
});

function mkdir(dir: string) {
  cpSync(join(ROOT, "Pulumi.yaml"), join(dir, "config.json"));
}
