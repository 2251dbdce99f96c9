/**
 * Reading an AWS stack's state for verify (engine/state.ts), on `pulumi stack export` output in its
 * documented format: deployment.resources[] with urn, type and outputs; dynamic resources typed
 * pulumi-nodejs:dynamic/<module>:<type>; secrets as {sig: …, plaintext: "<JSON>"} with
 * --show-secrets, {sig: …, ciphertext} without.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { verifyCommand } from "../cli/verify";
import type { NodeCheck } from "../provisioning/hosts";
import {
  awsNodeAccess,
  exportedResources,
  hostKeysOf,
  plainValue,
  resourceName,
  StateError,
} from "../engine/state";
import { readStackPlan } from "../cli/main";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(__dirname, "fixtures/pulumi-export", name), "utf8"));
const shown = fixture("multi-gpu.show-secrets.json");
const encrypted = fixture("multi-gpu.json");
const nodes = readStackPlan("multi-gpu").nodes.map((n) => n.name);

const SIG = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };
const HEAD_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhlYWQtaG9zdC1rZXktZml4dHVyZS0wMDAwMDAwMDAwMA";
const WORKER_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdvcmtlcjEtaG9zdC1rZXktZml4dHVyZS0wMDAwMDAwMA";

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("an AWS stack's nodes from its exported state", () => {
  it("every planned node: its address, port and login from its steps, the deployment's key, its console host key", () => {
    expect(nodes).toEqual(["head", "worker1"]);
    const access = awsNodeAccess(shown, "multi-gpu", nodes);
    expect(
      access.map(({ privateKey, ...rest }) => ({ ...rest, key: privateKey.split("\n")[0] })),
    ).toEqual([
      {
        node: "head",
        host: "54.210.10.11",
        port: 22,
        user: "ubuntu",
        hostKeys: [HEAD_KEY],
        key: "-----BEGIN OPENSSH PRIVATE KEY-----",
      },
      {
        node: "worker1",
        host: "54.210.10.12",
        port: 22,
        user: "ubuntu",
        hostKeys: [WORKER_KEY],
        key: "-----BEGIN OPENSSH PRIVATE KEY-----",
      },
    ]);
    // The key is the plaintext JSON-decoded: real newlines, no quotes.
    expect(access[0]!.privateKey).toMatch(
      /^-----BEGIN OPENSSH PRIVATE KEY-----\n[^"]+\n-----END OPENSSH PRIVATE KEY-----\n$/,
    );
  });

  it("an export without --show-secrets: says how to export it", () => {
    const e = thrown(() => awsNodeAccess(encrypted, "multi-gpu", nodes));
    expect(e).toBeInstanceOf(StateError);
    expect(e.message).toBe(
      "deployment SSH key (multi-gpu-deploy-key) is encrypted in this export: export the state with pulumi stack export --show-secrets",
    );
  });

  it("a stack not deployed (or another stack's export): names the resource and what to run", () => {
    const e = thrown(() => awsNodeAccess(shown, "single-gpu", ["head"]));
    expect(e.message).toBe(
      "the state of stack single-gpu has no deployment SSH key (resource single-gpu-deploy-key): deploy it first (npm run pulumi -- up --stack single-gpu --yes)",
    );
    const noWorker = thrown(() => awsNodeAccess(shown, "multi-gpu", ["head", "worker2"]));
    expect(noWorker.message).toBe(
      "the state of stack multi-gpu has no host key of worker2 (resource multi-gpu-worker2-hostkey): deploy it first (npm run pulumi -- up --stack multi-gpu --yes)",
    );
  });

  it("not an export at all: refused with the command that makes one", () => {
    const e = thrown(() => exportedResources({ version: 3 }, "state.json"));
    expect(e.message).toBe(
      "state.json is not the output of pulumi stack export (no deployment.resources): export it with pulumi stack export --show-secrets --stack <stack>",
    );
  });
});

describe("the export format's pieces", () => {
  it("a URN's last part is the resource's name (types may hold ':' and '$')", () => {
    expect(
      resourceName(
        "urn:pulumi:multi-gpu::qwen-vl-deploy::pulumi:pulumi:Stack$qwen-vl-deploy:aws:Deployment$pulumi-nodejs:dynamic/qwen-vl-deploy:DeployKey::multi-gpu-deploy-key",
      ),
    ).toBe("multi-gpu-deploy-key");
  });

  it("secrets unwrap to the value their plaintext encodes, at any depth", () => {
    const sig = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };
    expect(
      plainValue(
        {
          a: { ...sig, plaintext: '{"host":"1.2.3.4","port":22}' },
          b: [{ ...sig, plaintext: '"x\\ny"' }],
          c: 3,
        },
        "t",
      ),
    ).toEqual({ a: { host: "1.2.3.4", port: 22 }, b: ["x\ny"], c: 3 });
    // An object that merely looks like one (another signature) is data.
    expect(
      plainValue({ "4dabf18193072939515e22adb298388d": "other", plaintext: "1" }, "t"),
    ).toEqual({ "4dabf18193072939515e22adb298388d": "other", plaintext: "1" });
  });

  it("host keys: every key a node is known by (hostKeys), or the one of older states (hostKey)", () => {
    expect(hostKeysOf({ hostKeys: [HEAD_KEY, WORKER_KEY] })).toEqual([HEAD_KEY, WORKER_KEY]);
    expect(hostKeysOf({ hostKey: HEAD_KEY })).toEqual([HEAD_KEY]);
    expect(hostKeysOf({ hostKey: "" })).toEqual([]);
  });
});

describe("npm run verify on an AWS stack: the nodes reached from the state, as provisioning reached them", () => {
  const dir = mkdtempSync(join(tmpdir(), "qvl-verify-aws-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The fixture's export with its nodes at `host:port` and a real key (node-ssh parses it). */
  function exportAt(host: string, port: number): string {
    const key = join(dir, "id_ed25519");
    rmSync(key, { force: true });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    const text = readFileSync(
      join(__dirname, "fixtures/pulumi-export/multi-gpu.show-secrets.json"),
      "utf8",
    );
    const data = JSON.parse(text) as {
      deployment: { resources: { outputs?: Record<string, unknown> }[] };
    };
    for (const r of data.deployment.resources) {
      const o = r.outputs ?? {};
      const secret = (v: unknown) => ({ ...SIG, plaintext: JSON.stringify(v) });
      if (o["privateKey"]) o["privateKey"] = secret(readFileSync(key, "utf8"));
      if (o["connection"]) {
        const c = plainValue(o["connection"], "c") as Record<string, unknown>;
        o["connection"] = secret({ ...c, host, port });
      }
    }
    const file = join(dir, "export.json");
    writeFileSync(file, JSON.stringify(data));
    return file;
  }

  it("every node is dialled at its state's address with the state's key; an unreachable one is a failed ssh check, exit 1", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    let out = "";
    const code = await verifyCommand(
      ["--stack", "multi-gpu", "--state", exportAt("127.0.0.1", port), "--json"],
      (s) => (out += s),
      () => {},
    );
    expect(code).toBe(1);
    const report = JSON.parse(out) as { ok: boolean; checks: NodeCheck[] };
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.node, c.role, c.check, c.ok])).toEqual([
      ["head", "head", "ssh", false],
      ["worker1", "worker", "ssh", false],
    ]);
    for (const c of report.checks)
      expect(c.detail).toMatch(
        new RegExp(`^cannot reach ubuntu@127\\.0\\.0\\.1:${port} over SSH after 6 attempts`),
      );
  }, 30_000);

  it("--state without --show-secrets, or for a hosts stack: one line, exit 2, nothing dialled", async () => {
    await expect(
      verifyCommand(
        [
          "--stack",
          "multi-gpu",
          "--state",
          join(__dirname, "fixtures/pulumi-export/multi-gpu.json"),
        ],
        () => {},
        () => {},
      ),
    ).rejects.toThrow(
      "deployment SSH key (multi-gpu-deploy-key) is encrypted in this export: export the state with pulumi stack export --show-secrets",
    );
    await expect(
      verifyCommand(
        ["--stack", "hosts", "--state", "-"],
        () => {},
        () => {},
      ),
    ).rejects.toThrow(/^--state goes with AWS stacks: stack hosts reaches its hosts with/);
    await expect(
      verifyCommand(
        ["--stack", "multi-gpu", "--state", join(dir, "missing.json")],
        () => {},
        () => {},
      ),
    ).rejects.toThrow(/^--state .*missing\.json: ENOENT/);
  });
});
