/** What the renderer gives each node, per shipped stack (the scripts themselves run in provisioning.test.ts and the lab). */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { PROJECT_ROOT, readStackFile } from "../config/stack-file";
import { planStack, previewStack } from "../plan";
import { STEPS, renderProvisioning, stepDigest, type NodeBundle } from "../provisioning/render";
import { NODE_ETC, NODE_HOME } from "../plan/layout";
import { HOST_ADDRESS, MIRROR_PORT, NODE_ADDRESS } from "../lab/lab";
import { MODEL_MIRROR_LAYOUT } from "../lab/mirror";
import { planToText } from "../plan/report";
import { stackAt } from "./support/plans";

const plan = (stack: string) => planStack(readStackFile(stack).sections, { stack });
const file = (b: NodeBundle, path: string) => b.files.find((f) => f.path === path)?.content;
/** An ini file's sections and keys (Grafana's grafana.ini: "[section]", "key = value", "#" comments). */
function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = "";
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) out[(section = head[1]!)] = {};
    else {
      const i = line.indexOf("=");
      out[section]![line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  }
  return out;
}
/** node.env as bash reads it (quoting included). */
function sourced(b: NodeBundle): Record<string, string> {
  const r = spawnSync("bash", ["-c", `set -a; eval "$(cat)"; env -0`], {
    input: file(b, `${NODE_ETC}/node.env`),
    encoding: "utf8",
  });
  return Object.fromEntries(
    r.stdout
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

describe("renderProvisioning", () => {
  it("every node gets every script and the steps in order", () => {
    for (const stack of ["single-gpu", "multi-gpu", "large", "hosts"]) {
      const p = plan(stack);
      const addresses = Object.fromEntries(p.nodes.map((n, i) => [n.name, `10.0.0.${i + 10}`]));
      for (const b of renderProvisioning(p, { addresses })) {
        expect(b.steps.map((s) => s.id)).toEqual(STEPS.map((s) => s.id));
        for (const s of b.steps)
          expect(
            b.files.some((f) => f.path === `${NODE_HOME}/bin/${s.id}.sh`),
            s.id,
          ).toBe(true);
        expect(b.steps.find((s) => s.id === "driver")!.mayRequestReboot).toBe(true);
      }
    }
  });

  it("node.env states the layout and every setting; the scripts keep no second default for any of them", () => {
    const p = plan("single-gpu");
    const [b] = renderProvisioning(p, { addresses: { head: "10.0.0.10" } });
    const env = sourced(b!);
    expect(env).toMatchObject({
      QWEN_VL_HOME: "/opt/qwen-vl",
      QWEN_VL_STATE: "/var/lib/qwen-vl",
      MODEL_PARENT: "/var/lib/qwen-vl/models",
      MODEL_DIR: p.model.dir,
      SERVICE_HOME: "/var/lib/qwen-vl/service",
    });
    expect(p.model.dir.startsWith(`${env["MODEL_PARENT"]}/`)).toBe(true);
    // `${KEY:-default}` for a key every node.env sets is a second default that can disagree with
    // the plan's. (`${A:-$B}`, "A, else B", and `${A:-}` are not defaults.)
    const always = new Set(Object.keys(env));
    for (const stack of ["multi-gpu", "large", "hosts", "lab"]) {
      const q = plan(stack);
      const addresses = Object.fromEntries(q.nodes.map((n, i) => [n.name, `10.0.0.${i + 10}`]));
      const keys = new Set(Object.keys(sourced(renderProvisioning(q, { addresses })[0]!)));
      for (const k of always) if (!keys.has(k)) always.delete(k);
    }
    expect(always.has("MULTI_NODE") && !always.has("AWS_DEFAULT_REGION")).toBe(true);
    const seconds: string[] = [];
    for (const f of b!.files.filter((x) => x.path.startsWith(`${NODE_HOME}/bin/`))) {
      for (const m of f.content.matchAll(/\$\{([A-Z_]+):-[^$}][^}]*\}/g))
        if (always.has(m[1]!)) seconds.push(`${f.path.split("/").pop()}: ${m[0]}`);
      for (const m of f.content.matchAll(/os\.environ\.get\("([A-Z_]+)", [^)]+\)/g))
        if (always.has(m[1]!)) seconds.push(`${f.path.split("/").pop()}: ${m[0]}`);
    }
    expect(seconds).toEqual([]);
  });

  it("multi-gpu: Ray on both nodes, vLLM and Prometheus on the head, every pair and port checked", () => {
    const p = plan("multi-gpu");
    const [head, worker] = renderProvisioning(p, {
      addresses: { head: "10.0.0.10", worker1: "10.0.0.11" },
    });
    const he = sourced(head!);
    const we = sourced(worker!);
    expect([he["ROLE"], we["ROLE"]]).toEqual(["head", "worker"]);
    expect(he["MULTI_NODE"]).toBe("1");
    expect(we["RAY_ADDRESS"]).toBe("10.0.0.10:6379");
    expect(we["CHECK_TARGETS"]!.split(" ")).toEqual([
      "head:10.0.0.10:6380",
      "head:10.0.0.10:6381",
      "head:10.0.0.10:9100",
      "head:10.0.0.10:6379",
    ]);
    expect(he["CHECK_TARGETS"]!.split(" ")).toEqual([
      "worker1:10.0.0.11:6380",
      "worker1:10.0.0.11:6381",
      "worker1:10.0.0.11:9100",
    ]);
    expect(he["TOTAL_GPUS"]).toBe("8");
    expect(he["GPU_SMI_NAME"]).toBe("Tesla T4");
    expect(he["DRIVER_FLAVOR"]).toBe("open");
    expect(he["MODEL_ID"]).toBe("Qwen/Qwen2-VL-7B-Instruct");
    // The node's AWS SDK signs S3 mirror URLs for the stack's region; hosts have no stack region.
    expect(he["AWS_DEFAULT_REGION"]).toBe(p.aws?.region ?? "");
    expect(he["BOTOCORE_VERSION"]).toMatch(/^\d+\.\d+\.\d+$/);
    const hosts = plan("hosts");
    const onHost = renderProvisioning(hosts, {
      addresses: Object.fromEntries(hosts.nodes.map((n) => [n.name, "10.0.0.9"])),
    });
    expect(sourced(onHost[0]!)["AWS_DEFAULT_REGION"]).toBeUndefined();
    expect(file(head!, `${NODE_HOME}/rendered/vllm.args`)!.trimEnd().split("\n")).toEqual(
      p.vllmArgs,
    );
    expect(file(worker!, `${NODE_HOME}/rendered/vllm.args`)).toBeUndefined();
    expect(file(head!, `${NODE_HOME}/rendered/qwen-vl-ray.service`)).toMatch(
      /ray start --head --port=6379/,
    );
    expect(file(worker!, `${NODE_HOME}/rendered/qwen-vl-ray.service`)).toMatch(
      /ray start --address=\$\{RAY_ADDRESS\}/,
    );
    // Ray's temp dir is the head's choice; workers take it from the head (ray start refuses it there).
    expect(file(head!, `${NODE_HOME}/rendered/qwen-vl-ray.service`)).toMatch(
      / --temp-dir=\/var\/lib\/qwen-vl\/ray /,
    );
    expect(file(worker!, `${NODE_HOME}/rendered/qwen-vl-ray.service`)).not.toMatch(/--temp-dir/);
    const unit = file(head!, `${NODE_HOME}/rendered/qwen-vl-vllm.service`)!;
    expect(unit).toMatch(/^Requires=qwen-vl-ray.service$/m);
    // vLLM and Ray run unprivileged, with pinned memory for NCCL; the weights check runs as root.
    for (const u of [unit, file(worker!, `${NODE_HOME}/rendered/qwen-vl-ray.service`)!]) {
      expect(u).toMatch(/^User=qwen-vl$/m);
      expect(u).toMatch(/^Group=qwen-vl$/m);
      expect(u).toMatch(/^Environment=HOME=\/var\/lib\/qwen-vl\/service$/m);
      expect(u).toMatch(/^LimitMEMLOCK=infinity$/m);
    }
    expect(unit).toMatch(/^ExecStartPre=\+\/opt\/qwen-vl\/bin\/weights-check.sh --quick$/m);
    expect(unit).toMatch(/^ExecStartPre=\/opt\/qwen-vl\/bin\/cluster-ready.sh$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^EnvironmentFile=-\/etc\/qwen-vl\/secrets.env$/m);
    const prom = parseYaml(file(head!, `${NODE_HOME}/rendered/prometheus.yml`)!) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const jobs = Object.fromEntries(
      prom.scrape_configs.map((j) => [j.job_name, j.static_configs.flatMap((s) => s.targets)]),
    );
    expect(jobs).toEqual({
      vllm: ["127.0.0.1:8000"],
      node: ["10.0.0.10:9100", "10.0.0.11:9100"],
      dcgm: ["10.0.0.10:9400", "10.0.0.11:9400"],
      ray: ["10.0.0.10:8080", "10.0.0.11:8080"],
    });
  });

  it("single node: no Ray, no peers; large: NVSwitch and 8 GPUs; hosts: the host's own interface", () => {
    const [single] = renderProvisioning(plan("single-gpu"), { addresses: { head: "10.0.0.10" } });
    expect(sourced(single!)["MULTI_NODE"]).toBe("0");
    expect(sourced(single!)["CHECK_TARGETS"]).toBe("");
    expect(file(single!, `${NODE_HOME}/rendered/qwen-vl-ray.service`)).toBeUndefined();
    const [large] = renderProvisioning(plan("large"), { addresses: { head: "10.0.0.10" } });
    expect(sourced(large!)).toMatchObject({
      NVSWITCH: "1",
      GPU_COUNT: "8",
      GRAFANA: "1",
      MIN_DRIVER: "580.65.06",
    });
    const p = planStack({
      ...readStackFile("hosts").sections,
      target: {
        kind: "hosts",
        hosts: [
          { name: "a", address: "192.0.2.1", gpu: "V100", gpuCount: 1, networkInterface: "enp1s0" },
        ],
      },
      vllm: { version: "0.19.1", dtype: "half", maxPixels: 1003520, maxModelLen: 4096 },
    });
    const [h] = renderProvisioning(p, { addresses: { a: "192.0.2.1" } });
    expect(sourced(h!)).toMatchObject({
      NETWORK_INTERFACE: "enp1s0",
      DRIVER_FLAVOR: "proprietary",
      NODE_NAME: "a",
    });
  });

  it("every node gets the plan's lock; a new lock re-runs python-env and what builds on it, no other step", () => {
    const p = plan("multi-gpu");
    const addresses = Object.fromEntries(p.nodes.map((n, i) => [n.name, `10.0.0.${i + 10}`]));
    const lockText = readFileSync(join(PROJECT_ROOT, p.python.lock), "utf8");
    const before = renderProvisioning(p, { addresses });
    for (const b of before) expect(file(b, `${NODE_HOME}/rendered/python.lock`)).toBe(lockText);
    const after = renderProvisioning(p, { addresses, pythonLock: lockText + "extra==1.0\n" });
    const changed = after[0]!.steps
      .filter((s, i) => s.digest !== before[0]!.steps[i]!.digest)
      .map((s) => s.id);
    expect(changed).toEqual(["python-env"]);
    // The node.env no longer carries package versions: the lock does.
    expect(sourced(before[0]!)).not.toHaveProperty("RAY_VERSION");
    expect(sourced(before[0]!)).not.toHaveProperty("TRANSFORMERS_MIN");
  });

  it("a vLLM setting (maxModelLen) changes the digests of the vllm step and the readiness gate (which holds the KV cache to one such request) and no other (the e2e checks the engine agrees)", () => {
    const digests = (maxModelLen: number) => {
      const s = structuredClone(readStackFile("lab-single").sections) as Record<
        string,
        Record<string, unknown>
      >;
      s["vllm"] = { ...s["vllm"], maxModelLen };
      const [b] = renderProvisioning(planStack(s, { stack: "lab-single" }), {
        addresses: { "lab-n4": "10.0.0.14" },
      });
      return b!.steps.map((x) => [x.id, x.digest] as const);
    };
    const before = digests(4096);
    const after = digests(2048);
    expect(after.filter(([, d], i) => d !== before[i]![1]).map(([id]) => id)).toEqual([
      "vllm",
      "readiness",
    ]);
  });

  it("vllm.engine: VLLM_USE_V1 in the unit and before the plan's command line (0.8.0–0.10.x); unset, neither", () => {
    const base = { maxModelLen: 8192, maxPixels: 1003520 };
    const stack = (engine?: "v0" | "v1") =>
      planStack(...stackAt("0.9.2", { ...base, ...(engine ? { engine } : {}) }));
    const unit = (p: ReturnType<typeof stack>) =>
      file(
        renderProvisioning(p, {
          addresses: { [p.nodes[0]!.name]: "10.0.0.10" },
          pythonLock: "vllm==0.9.2\n", // the test lock's text (its index entry is made up)
        })[0]!,
        `${NODE_HOME}/rendered/qwen-vl-vllm.service`,
      )!;
    const v0 = stack("v0");
    expect(v0.engine).toBe("v0");
    expect(unit(v0)).toMatch(/^Environment=VLLM_USE_V1=0$/m);
    expect(planToText(v0)).toMatch(/vLLM {7}VLLM_USE_V1=0 vllm serve /);
    // V0 keeps --swap-space; the V1 plan of the same stack refuses it and names vllm.engine.
    const swap = (engine: "v0" | "v1") =>
      previewStack(...stackAt("0.9.2", { ...base, engine, swapSpaceGiB: 4 }));
    expect(swap("v0").problems).toEqual([]);
    expect(swap("v0").plan.vllmArgs.join(" ")).toContain("--swap-space 4");
    expect(() => swap("v1")).toThrow(
      /vllm.swapSpaceGiB: 4 — .*no --swap-space; remove it, or set vllm.engine: v0/,
    );
    expect(unit(stack("v1"))).toMatch(/^Environment=VLLM_USE_V1=1$/m);
    const auto = stack();
    expect(auto.engine).toBe("v1"); // an A10G (8.6) at 0.9.2
    expect(unit(auto)).not.toMatch(/VLLM_USE_V1/);
    expect(planToText(auto)).toMatch(/vLLM {7}vllm serve /);
  });

  it("vLLM's CPU build (the lab): VLLM_CPU_KVCACHE_SPACE in the unit, the build and the planned KV cache in node.env; the CUDA build's unit has no such line", () => {
    const [lab] = renderProvisioning(plan("lab-single"), { addresses: { "lab-n4": "10.0.0.14" } });
    const unit = file(lab!, `${NODE_HOME}/rendered/qwen-vl-vllm.service`)!;
    expect(unit).toMatch(/^Environment=VLLM_CPU_KVCACHE_SPACE=1$/m);
    expect(sourced(lab!)).toMatchObject({
      VLLM_BUILD: "cpu",
      PLANNED_KV_TOKENS: "2097152",
      PLANNED_KV_DEVICE: "cpu",
      MAX_MODEL_LEN: "4096",
    });
    const gpu = plan("single-gpu");
    const [head] = renderProvisioning(gpu, { addresses: { head: "10.0.0.10" } });
    expect(file(head!, `${NODE_HOME}/rendered/qwen-vl-vllm.service`)).not.toMatch(
      /VLLM_CPU_KVCACHE_SPACE/,
    );
    expect(sourced(head!)).toMatchObject({
      VLLM_BUILD: "cuda",
      PLANNED_KV_TOKENS: String(gpu.kvCacheTokens),
      PLANNED_KV_DEVICE: "gpu",
    });
  });

  it("the gate's NCCL floor is the plan's: the board's link on one node, the network across nodes", () => {
    expect(plan("single-gpu").ncclMinBusbwGbps).toBe(5); // PCIe
    expect(plan("large").ncclMinBusbwGbps).toBe(100); // H100 on NVSwitch (p5)
    const multi = plan("multi-gpu");
    expect(multi.ncclMinBusbwGbps).toBe(0.4); // TCP sockets between two g4dn.12xlarge
    const [head] = renderProvisioning(multi, {
      addresses: { head: "10.0.0.10", worker1: "10.0.0.11" },
    });
    expect(sourced(head!)["NCCL_MIN_BUSBW_GBPS"]).toBe("0.4");
  });

  it("a step's digest follows the files its code names, not those a comment names", () => {
    const f = (name: string, content: string) => ({
      path: `${NODE_HOME}/bin/${name}`,
      content,
      mode: 0o755,
    });
    const files = (helper: string) => [
      f("lib.sh", "# undo.sh reads the ledger\nlog() { :; }\n"),
      f("weights.sh", 'python3 "$bin/helper.py" # the code names helper.py\n# see other.py\n'),
      f("helper.py", helper),
      f("other.py", "print(1)\n"),
      f("undo.sh", "echo undo\n"),
    ];
    const base = stepDigest("weights", files("print(0)\n"), {});
    expect(stepDigest("weights", files("print(2)\n"), {})).not.toBe(base);
    const other = files("print(0)\n").map((x) =>
      x.path.endsWith("other.py") ? { ...x, content: "print(3)\n" } : x,
    );
    expect(stepDigest("weights", other, {})).toBe(base);
    const undo = files("print(0)\n").map((x) =>
      x.path.endsWith("undo.sh") ? { ...x, content: "echo changed\n" } : x,
    );
    expect(stepDigest("weights", undo, {})).toBe(base);
  });

  it("provisioning.mirrorUrl's {repo} and {revision} are the model's: the node gets the model's own folder", () => {
    const p = plan("lab");
    const addresses = Object.fromEntries(p.nodes.map((n, i) => [n.name, `10.0.0.${i + 10}`]));
    expect(sourced(renderProvisioning(p, { addresses })[0]!)["MIRROR_URL"]).toBe(
      `http://10.77.0.1:8080/models/lab--Qwen2-VL-7B-standin/${p.model.revision}`,
    );
  });

  it("the lab stacks name the lab's own mirror and nodes (lab/lab.ts, lab/mirror.ts): stated in the files, checked here", () => {
    const mirror = `http://${HOST_ADDRESS}:${MIRROR_PORT}`;
    for (const stack of ["lab", "lab-single"]) {
      const c = readStackFile(stack).sections as Record<string, Record<string, unknown>>;
      const prov = c["provisioning"]!;
      // Weights from the lab's mirror or its stand-in hub: one of them, and the lab's.
      expect(prov["mirrorUrl"] ?? prov["hfEndpoint"], stack).toBeDefined();
      if (prov["mirrorUrl"]) expect(prov["mirrorUrl"]).toBe(`${mirror}/${MODEL_MIRROR_LAYOUT}`);
      if (prov["hfEndpoint"]) expect(prov["hfEndpoint"]).toBe(`${mirror}/hub`);
      expect(prov["pythonFindLinks"]).toBe(`${mirror}/wheels/`);
      for (const h of c["target"]!["hosts"] as { name: string; address: string }[])
        expect(h.address).toBe(NODE_ADDRESS(Number(h.name.replace("lab-n", ""))));
    }
  });

  it("Grafana (large asks for it): loopback only, the admin password from the root-only file through a systemd credential", () => {
    const [b] = renderProvisioning(plan("large"), { addresses: { head: "10.0.0.10" } });
    const ini = parseIni(file(b!, `${NODE_HOME}/rendered/grafana.ini`)!);
    expect(ini["server"]).toEqual({ http_addr: "127.0.0.1", http_port: "3000" });
    // Grafana's file provider reads the credential systemd hands the unit (LoadCredential=).
    expect(ini["security"]).toEqual({
      admin_password: "$__file{/run/credentials/grafana-server.service/admin-password}",
    });
    expect(file(b!, `${NODE_HOME}/rendered/grafana-server.conf`)).toMatch(
      /^\[Service\]\nLoadCredential=admin-password:\/etc\/qwen-vl\/grafana-admin-password\n$/m,
    );
    expect(sourced(b!)["GRAFANA_PORT"]).toBe("3000");
    // The monitoring step reads them: a change re-runs it.
    const monitoring = b!.steps.find((s) => s.id === "monitoring")!;
    const files = b!.files.map((f) =>
      f.path.endsWith("/grafana.ini")
        ? { ...f, content: f.content.replace("127.0.0.1", "0.0.0.0") }
        : f,
    );
    expect(stepDigest("monitoring", files, b!.env)).not.toBe(monitoring.digest);
    // Without Grafana (single-gpu): none of it.
    const [single] = renderProvisioning(plan("single-gpu"), { addresses: { head: "10.0.0.10" } });
    expect(single!.files.filter((f) => /grafana/.test(f.path))).toEqual([]);
  });

  it("AWS nodes state the root volume's size: a larger target.rootVolumeGiB re-runs preflight (which grows the filesystem), nothing else", () => {
    const sections = readStackFile("single-gpu").sections;
    const at = (gib?: number) => {
      const target = { ...(sections["target"] as Record<string, unknown>), rootVolumeGiB: gib };
      const [b] = renderProvisioning(planStack({ ...sections, target }), {
        addresses: { head: "10.0.0.10" },
      });
      return b!;
    };
    const [small, large] = [at(200), at(300)];
    expect(sourced(small)["ROOT_VOLUME_GIB"]).toBe("200");
    expect(sourced(large)["ROOT_VOLUME_GIB"]).toBe("300");
    const changed = small.steps
      .filter((s, i) => s.digest !== large.steps[i]!.digest)
      .map((s) => s.id);
    expect(changed).toEqual(["preflight"]);
    // Hosts stacks have no volume to grow: not stated.
    const [hosts] = renderProvisioning(plan("hosts"), { addresses: { rtx3090: "10.0.0.10" } });
    expect(sourced(hosts!)["ROOT_VOLUME_GIB"]).toBeUndefined();
  });

  it("values with spaces and quotes survive the env file", () => {
    const p = plan("single-gpu");
    const [b] = renderProvisioning(p, { addresses: { head: "10.0.0.10" } });
    expect(sourced(b!)["GPU_SMI_NAME"]).toBe("NVIDIA A10G");
    expect(sourced(b!)["VLLM_DASHBOARD_URL"]).toMatch(
      /^https:\/\/raw.githubusercontent.com\/vllm-project\/vllm\/v0.31.0\/examples\/observability\/prometheus_grafana\/grafana.json$/,
    );
  });
});

describe("multi-node has one definition: the plan's (TP × PP wider than a node)", () => {
  it("TP spanning two nodes with PP 1: Ray across them, the Ray executor, cluster ports", () => {
    const p = planStack({
      ...readStackFile("hosts").sections,
      target: {
        kind: "hosts",
        hosts: [
          { name: "a", address: "192.0.2.1", gpu: "RTX-3090", gpuCount: 1 },
          { name: "b", address: "192.0.2.2", gpu: "RTX-3090", gpuCount: 1 },
        ],
      },
      vllm: {
        maxPixels: 1003520,
        maxModelLen: 4096,
        tensorParallelSize: 2,
        pipelineParallelSize: 1,
      },
    });
    expect(p.multiNode).toBe(true);
    expect(p.vllmArgs.join(" ")).toContain("--distributed-executor-backend ray");
    expect(p.ports.some((x) => x.name === "rayGcs" && x.exposure === "cluster")).toBe(true);
    const [a, b] = renderProvisioning(p, { addresses: { a: "192.0.2.1", b: "192.0.2.2" } });
    expect(sourced(a!)["MULTI_NODE"]).toBe("1");
    expect(sourced(b!)["RAY_ADDRESS"]).toBe(`192.0.2.1:6379`);
    // One node's GPUs are enough: not multi-node, whatever else the stack has.
    const single = planStack(readStackFile("single-gpu").sections);
    expect(single.multiNode).toBe(false);
  });
});
