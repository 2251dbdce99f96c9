/**
 * First contact over SSH, against the real formats: the EC2 console as the serial console delivers
 * it (CR LF, cloud-init's logger prefix, interleaved kernel and systemd lines), known_hosts as the
 * real ssh-keyscan and ssh-keygen write it (every key type, hashed names, [host]:port, @revoked),
 * and the provisioning resources' diffs with the engine's unknown values and older releases' state.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { HostConfig } from "../config/schema";
import { knownHostKeys, knownHostsFieldMatches, parseKnownHosts } from "../provisioning/hosts";
import {
  isWholeSshKey,
  keyFingerprint,
  launchScript,
  parseConsoleHostKeys,
  pollScript,
  RUN_DIR,
} from "../provisioning/remote";
import {
  consoleHostKeyDiff,
  deployKeyDiff,
  stepDiff,
  stepNeedsRun,
  storedUndoCommand,
  UNKNOWN,
  type StepState,
} from "../provisioning/resource-diffs";
import { connect, exec, hostKeyAlgorithms } from "../provisioning/ssh";

const dir = mkdtempSync(join(tmpdir(), "qwen-vl-ssh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A host's three keys as a fresh Debian or Ubuntu image has them (ssh-keygen -A), real ones. */
function hostKeys(name: string): Record<"rsa" | "ecdsa" | "ed25519", string> {
  const root = join(dir, name);
  spawnSync("mkdir", ["-p", join(root, "etc/ssh")]);
  const r = spawnSync("ssh-keygen", ["-A", "-f", root], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const pub = (t: string) => readFileSync(join(root, `etc/ssh/ssh_host_${t}_key.pub`), "utf8");
  return { rsa: pub("rsa"), ecdsa: pub("ecdsa"), ed25519: pub("ed25519") };
}
const typeAndKey = (pub: string) => pub.trim().split(" ").slice(0, 2).join(" ");

describe("the EC2 console's host keys (cloud-init's write-ssh-key-fingerprints through logger)", () => {
  const keys = hostKeys("console");
  // cloud-init pipes the block through `logger --stderr -t ec2` (tools/write-ssh-key-fingerprints):
  // each line gets the syslog prefix; the serial console ends lines in CR LF (aws/aws-cli#2062).
  const ec2 = (l: string) => `<14>Dec  2 11:02:07 ec2: ${l}`;
  const [rsaType, rsaB64] = keys.rsa.trim().split(" ");
  const block = (order: string[], cut = false) => [
    ec2("-----BEGIN SSH HOST KEY KEYS-----"),
    ...order.map((t) => ec2(keys[t as "rsa"].trim())),
    "[   31.204518] cloud-init[1105]: Cloud-init v. 24.1.3 running 'modules:final'",
    // A key line cut in two by a systemd status line on the shared console: never a key.
    ...(cut ? [ec2(`${rsaType} ${rsaB64!.slice(0, 200)}`), "[  OK  ] Started snapd.service."] : []),
    ec2("-----END SSH HOST KEY KEYS-----"),
  ];
  const consoleText = (lines: string[]) => lines.join("\r\n") + "\r\n";

  it("reads every whole key from CR LF text with prefixes, comments and interleaved lines", () => {
    const text = consoleText([
      "[    0.000000] Linux version 6.8.0-1021-aws (buildd@lcy02-amd64-040)",
      ec2("#############################################################"),
      ec2("-----BEGIN SSH HOST KEY FINGERPRINTS-----"),
      ec2("256 SHA256:Vx0xGqP3n1l2m3 root@ip-172-31-7-19 (ED25519)"),
      ec2("-----END SSH HOST KEY FINGERPRINTS-----"),
      ...block(["ecdsa", "ed25519"], true),
      "[  OK  ] Reached target cloud-init.target.",
    ]);
    expect(text).toContain("\r\n");
    // The cut rsa line is dropped; ed25519 first (what ssh2 offers first).
    expect(parseConsoleHostKeys(text)).toEqual([typeAndKey(keys.ed25519), typeAndKey(keys.ecdsa)]);
  });

  it("takes the last whole block (a reboot prints another), and nothing before the block ends", () => {
    const other = hostKeys("console-old");
    const old = [
      ec2("-----BEGIN SSH HOST KEY KEYS-----"),
      ec2(other.ed25519.trim()),
      ec2("-----END SSH HOST KEY KEYS-----"),
    ];
    const text = consoleText([...old, ...block(["rsa", "ecdsa", "ed25519"])]);
    expect(parseConsoleHostKeys(text)).toEqual([
      typeAndKey(keys.ed25519),
      typeAndKey(keys.ecdsa),
      typeAndKey(keys.rsa),
    ]);
    // The 64 KB window can end inside the block: no END yet, no key yet.
    const unfinished = consoleText(block(["ed25519"]).slice(0, 2));
    expect(parseConsoleHostKeys(unfinished)).toEqual([]);
    expect(parseConsoleHostKeys("")).toEqual([]);
  });

  it("tells a whole key of its type from a truncated, mistyped or foreign blob", () => {
    for (const t of ["rsa", "ecdsa", "ed25519"] as const)
      expect(isWholeSshKey(typeAndKey(keys[t]))).toBe(true);
    const [type, b64] = typeAndKey(keys.ed25519).split(" ");
    expect(isWholeSshKey(`${type} ${b64!.slice(0, 40)}`)).toBe(false);
    expect(isWholeSshKey(`ssh-rsa ${b64}`)).toBe(false);
    expect(isWholeSshKey(`${type} not+base64!`)).toBe(false);
  });

  it("fingerprints a key as ssh-keygen -l does (the deploy key's id)", () => {
    const f = join(dir, "console", "etc/ssh/ssh_host_ed25519_key.pub");
    const l = spawnSync("ssh-keygen", ["-l", "-E", "sha256", "-f", f], { encoding: "utf8" });
    expect(l.stdout.split(" ")[1]).toBe(keyFingerprint(typeAndKey(keys.ed25519)));
  });
});

describe("known_hosts as OpenSSH reads it (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT)", () => {
  const host = (address: string, port = 22): HostConfig =>
    ({ name: "rtx3090", address, port, user: "root" }) as HostConfig;
  const keys = hostKeys("known");

  it("a real ssh-keygen -H file (hashed names, every key type) gives all the host's keys", () => {
    const file = join(dir, "known_hosts_hashed");
    writeFileSync(
      file,
      [
        `192.0.2.10 ${typeAndKey(keys.rsa)}`,
        `192.0.2.10 ${typeAndKey(keys.ecdsa)}`,
        `192.0.2.10 ${typeAndKey(keys.ed25519)}`,
        `192.0.2.99 ${typeAndKey(hostKeys("stranger").ed25519)}`,
      ].join("\n") + "\n",
    );
    const h = spawnSync("ssh-keygen", ["-H", "-f", file], { encoding: "utf8" });
    expect(h.status, h.stderr).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("192.0.2.10");
    expect(text).toMatch(/^\|1\|/m);
    // ssh-keyscan's order (rsa first): all three are accepted, whichever the server presents.
    expect(knownHostKeys(file, host("192.0.2.10"))).toEqual([
      typeAndKey(keys.rsa),
      typeAndKey(keys.ecdsa),
      typeAndKey(keys.ed25519),
    ]);
    // ssh-keygen -F finds the same host in the same file: both read it alike.
    const f = spawnSync("ssh-keygen", ["-F", "192.0.2.10", "-f", file], { encoding: "utf8" });
    expect(f.stdout.split("\n").filter((l) => l.startsWith("|1|"))).toHaveLength(3);
  });

  it("[host]:port names another port; patterns, negation and @revoked as OpenSSH", () => {
    const file = join(dir, "known_hosts_ports");
    writeFileSync(
      file,
      [
        "# a comment, and a blank line",
        "",
        `[192.0.2.20]:2222 ${typeAndKey(keys.ed25519)} root@box`,
        `192.0.2.20 ${typeAndKey(keys.ecdsa)}`,
        `192.0.2.*,!192.0.2.66 ${typeAndKey(keys.rsa)}`,
        `@revoked * ${typeAndKey(keys.ecdsa)}`,
        `@cert-authority *.example.com ${typeAndKey(keys.ed25519)}`,
      ].join("\r\n"),
    );
    expect(parseKnownHosts(readFileSync(file, "utf8"))).toHaveLength(5);
    expect(knownHostKeys(file, host("192.0.2.20", 2222))).toEqual([typeAndKey(keys.ed25519)]);
    // Port 22: the plain name; the revoked ecdsa key is dropped, the wildcard's rsa key stays.
    expect(knownHostKeys(file, host("192.0.2.20"))).toEqual([typeAndKey(keys.rsa)]);
    expect(() => knownHostKeys(file, host("192.0.2.66"))).toThrow(
      /has no host key for rtx3090 \(192\.0\.2\.66\): add the host's own keys with ssh-keyscan -H -p 22 192\.0\.2\.66/,
    );
    expect(() => knownHostKeys(file, host("198.51.100.1", 2200))).toThrow(
      /no host key for rtx3090 \(\[198\.51\.100\.1\]:2200\)/,
    );
    expect(knownHostsFieldMatches("Box.Example.com", "box.example.COM", 22)).toBe(true);
    expect(knownHostsFieldMatches("[box]:22", "box", 22)).toBe(false);
  });

  it("a host whose every key is revoked, or known only by a CA, is refused with why", () => {
    const file = join(dir, "known_hosts_revoked");
    writeFileSync(
      file,
      `192.0.2.30 ${typeAndKey(keys.rsa)}\n@revoked 192.0.2.30 ${typeAndKey(keys.rsa)}\n@cert-authority 192.0.2.31 ${typeAndKey(keys.ed25519)}\n`,
    );
    expect(() => knownHostKeys(file, host("192.0.2.30"))).toThrow(/is marked @revoked/);
    expect(() => knownHostKeys(file, host("192.0.2.31"))).toThrow(/only a certificate authority/);
  });

  it("offers the server only the host key algorithms of the known keys, in ssh2's order", () => {
    expect(hostKeyAlgorithms([typeAndKey(keys.rsa)])).toEqual([
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(hostKeyAlgorithms([typeAndKey(keys.rsa), typeAndKey(keys.ed25519)])).toEqual([
      "ssh-ed25519",
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(hostKeyAlgorithms([typeAndKey(keys.ecdsa)])).toEqual(["ecdsa-sha2-nistp256"]);
  });
});

describe("the provisioning resources' diffs: unknown inputs (preview) and older state", () => {
  const state: StepState = {
    connection: { host: "203.0.113.5", port: 22, user: "ubuntu", hostKeys: ["ssh-ed25519 AAAA"] },
    node: "head",
    step: "weights",
    create: "bash /opt/qwen-vl/bin/weights.sh",
    delete: "bash /opt/qwen-vl/bin/undo.sh weights",
    triggers: ["digest-a", "python-env:f1"],
    changed: true,
    seconds: 3,
    tail: "",
  };
  const same = {
    connection: { ...state.connection, privateKey: "secret" },
    create: state.create,
    delete: state.delete,
    triggers: state.triggers,
  };

  it("nothing changed: no change; a new trigger: run again", () => {
    expect(stepDiff(state, same)).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: true,
    });
    expect(stepNeedsRun(state, { ...same, triggers: ["digest-b", "python-env:f1"] })).toBe(true);
    // A re-run token not seen before runs it once; the same token again does not.
    const rerun = { ...same, triggers: [...state.triggers, "rerun:1"] };
    expect(stepNeedsRun(state, rerun)).toBe(true);
    expect(stepNeedsRun({ ...state, triggers: rerun.triggers }, rerun)).toBe(false);
  });

  it("every input unknown, or inside: planned (a replacement when the address is unknown), no throw", () => {
    // The engine passes the sentinel for a whole value or a field (a replaced node's address).
    expect(stepDiff(state, { ...same, triggers: UNKNOWN })).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect(stepDiff(state, { ...same, connection: UNKNOWN })).toMatchObject({
      changes: true,
      replaces: ["connection"],
    });
    expect(
      stepDiff(state, { ...same, connection: { ...same.connection, host: UNKNOWN } }),
    ).toMatchObject({ changes: true, replaces: ["connection"] });
    expect(
      stepDiff(state, { ...same, connection: { ...same.connection, hostKeys: UNKNOWN } }),
    ).toMatchObject({ changes: true, replaces: [] });
    expect(stepDiff(state, { ...same, create: UNKNOWN, delete: UNKNOWN }).changes).toBe(true);
    expect(stepDiff(state, { ...same, triggers: [UNKNOWN, "x"] }).changes).toBe(true);
  });

  it("another host or port replaces; new host keys or user are recorded without running", () => {
    const moved = { ...same, connection: { ...same.connection, host: "203.0.113.6" } };
    expect(stepDiff(state, moved).replaces).toEqual(["connection"]);
    const rekeyed = { ...same, connection: { ...same.connection, hostKeys: ["ssh-rsa BBBB"] } };
    expect(stepDiff(state, rekeyed)).toMatchObject({ changes: true, replaces: [] });
    expect(stepNeedsRun(state, rekeyed)).toBe(false);
  });

  it("a step stored by the release with one hostKey migrates once, without running", () => {
    const legacy = {
      ...state,
      connection: { host: "203.0.113.5", port: 22, user: "ubuntu", hostKey: "ssh-ed25519 AAAA" },
    } as unknown as StepState;
    expect(stepDiff(legacy, same)).toMatchObject({ changes: true, replaces: [] });
    expect(stepNeedsRun(legacy, same)).toBe(false);
  });

  it("an undo stored by the earlier release is guarded: nothing to undo once the bundle's undo ran", () => {
    const legacy = storedUndoCommand("bash /opt/qwen-vl/bin/undo.sh weights");
    const sh = (cmd: string) =>
      spawnSync("bash", ["-c", cmd.replaceAll("/opt/qwen-vl", dir)], { encoding: "utf8" });
    const gone = sh(legacy);
    expect(gone.status).toBe(0);
    expect(gone.stdout).toMatch(/\[qwen-vl undo weights\] nothing left to undo/);
    spawnSync("mkdir", ["-p", join(dir, "bin")]);
    writeFileSync(join(dir, "bin/undo.sh"), 'echo "undo $1"; exit 4\n');
    const present = sh(legacy);
    expect([present.status, present.stdout]).toEqual([4, "undo weights\n"]);
    expect(storedUndoCommand("rm -f /etc/qwen-vl/secrets.env")).toBe(
      "rm -f /etc/qwen-vl/secrets.env",
    );
  });

  it("the deploy key never changes once made; a state that lost it is made again", () => {
    expect(deployKeyDiff({ comment: "c", publicKey: "ssh-ed25519 A", privateKey: "k" })).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    // What the engine's default update left behind (only __provider): made again.
    expect(deployKeyDiff({ comment: "c" }).changes).toBe(true);
  });

  it("console host keys: read again only for another (or unknown) instance; old state migrates", () => {
    const olds = { instanceId: "i-1", hostKeys: ["ssh-ed25519 A"] };
    expect(consoleHostKeyDiff(olds, { instanceId: "i-1" }).changes).toBe(false);
    expect(consoleHostKeyDiff(olds, { instanceId: "i-2" }).replaces).toEqual(["instanceId"]);
    expect(consoleHostKeyDiff(olds, { instanceId: UNKNOWN }).replaces).toEqual(["instanceId"]);
    expect(
      consoleHostKeyDiff({ instanceId: "i-1", hostKey: "ssh-ed25519 A" }, { instanceId: "i-1" }),
    ).toMatchObject({ changes: true, replaces: [] });
  });
});

describe("a detached run, its launch and its polls, run by a real shell", () => {
  // The scripts run on the node as root; here under a private RUN_DIR-like folder by substitution.
  const sh = (script: string) =>
    spawnSync("bash", ["-c", script.replaceAll(RUN_DIR, join(dir, "steps"))], {
      encoding: "utf8",
      env: { ...process.env, PATH: process.env["PATH"]! },
    });

  it("runs once however often it is launched, and the polls give its output and exit status", () => {
    const id = "weights-test-1";
    const d = join(dir, "steps", id);
    spawnSync("mkdir", ["-p", d]);
    writeFileSync(
      join(d, "cmd"),
      'echo one; echo launched-at >> "$0.count"; sleep 1; echo two; exit 3\n',
    );
    // No systemd here: setsid + nohup; the second launch finds it launched.
    const launchNoSystemd = (s: string) => s.replace("[ -d /run/systemd/system ]", "false");
    expect(sh(launchNoSystemd(launchScript(id))).stdout).toContain("launched");
    expect(sh(launchNoSystemd(launchScript(id))).stdout).toContain("launched");
    let offset = 0;
    let out = "";
    let rc = "-";
    for (let i = 0; i < 60 && rc === "-"; i++) {
      const r = sh(pollScript(id, offset)).stdout;
      const nl = r.indexOf("\n");
      const [code, size] = r.slice(0, nl).split(" ");
      out += Buffer.from(r.slice(nl + 1), "base64").toString();
      offset = Number(size);
      rc = code!;
    }
    expect(rc).toBe("3");
    expect(out).toBe("one\ntwo\n");
    expect(readFileSync(join(d, "cmd.count"), "utf8").trim().split("\n")).toHaveLength(1);
  }, 60_000);
});

describe("a dead link (no packet answered) is noticed by keepalive and ends the exec", () => {
  it("an exec over a link that stops carrying bytes ends (code null) instead of hanging", async () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    // ssh2 ships no types: the little of its server this test uses.
    type Emitter = { on(event: string, fn: (...a: never[]) => void): Emitter };
    const ssh2 = require("ssh2") as {
      utils: { generateKeyPairSync(t: "ed25519"): { public: string; private: string } };
      Server: new (
        o: { hostKeys: string[] },
        onClient: (c: Emitter) => void,
      ) => import("node:net").Server;
    };
    const net = require("node:net") as typeof import("node:net");
    /* eslint-enable @typescript-eslint/no-require-imports */
    const host = ssh2.utils.generateKeyPairSync("ed25519");
    const client = ssh2.utils.generateKeyPairSync("ed25519");
    const server = new ssh2.Server({ hostKeys: [host.private] }, (c) => {
      c.on("error", () => undefined);
      c.on("authentication", (ctx: { accept(): void }) => ctx.accept());
      c.on("ready", () =>
        c.on("session", (accept: () => Emitter) =>
          accept().on("exec", (acceptExec: () => { write(s: string): void }) =>
            acceptExec().write("started\n"),
          ),
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    // A relay in between that stops relaying: a VPN gone, a laptop asleep (no FIN, no RST).
    let frozen = false;
    const sockets: import("node:net").Socket[] = [];
    const relay = net.createServer((down) => {
      const up = net.connect((server.address() as { port: number }).port, "127.0.0.1");
      for (const [from, to] of [
        [down, up],
        [up, down],
      ] as const)
        from.on("data", (b: Buffer) => {
          if (!frozen) to.write(b);
        });
      for (const s of [down, up]) s.on("error", () => undefined);
      sockets.push(down, up);
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    try {
      const ssh = await connect(
        {
          host: "127.0.0.1",
          port: (relay.address() as { port: number }).port,
          user: "probe",
          privateKey: client.private,
          hostKeys: [host.public.trim()],
        },
        1,
        { intervalMs: 200, countMax: 2 },
      );
      let started!: () => void;
      const seen = new Promise<void>((r) => (started = r));
      const run = exec(ssh, "sleep 1000", { onLine: (l) => l === "started" && started() });
      await seen;
      frozen = true;
      const outcome = await Promise.race([
        run.then(
          (r) => `ended ${r.code}`,
          () => "ended with an error",
        ),
        new Promise<string>((r) => setTimeout(() => r("still hanging"), 15_000)),
      ]);
      expect(outcome).toMatch(/^ended/);
      ssh.dispose();
    } finally {
      for (const s of sockets) s.destroy();
      relay.close();
      server.close();
    }
  }, 30_000);
});
