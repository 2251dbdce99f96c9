/**
 * npm run bench:verify [-- --files N --mib M] — the weights integrity check's throughput beside
 * plain sequential `sha256sum` over the same files, in the same run. Files are generated in a
 * temporary directory (safetensors-shaped, as the lab's stand-in) and removed afterwards.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { flags } from "../cli/main";
import { runCommand, UsageError } from "../config/errors";
import { PROJECT_ROOT } from "../config/stack-file";

function timed(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<number> {
  const { values } = flags(process.argv.slice(2), {
    files: { type: "string", default: "4" },
    mib: { type: "string", default: "256" },
  });
  const files = Number(values.files);
  const mib = Number(values.mib);
  if (!Number.isInteger(files) || files < 1 || !Number.isInteger(mib) || mib < 1)
    throw new UsageError("--files and --mib must be whole numbers ≥ 1");
  const dir = mkdtempSync(join(tmpdir(), "qwen-vl-bench-verify-"));
  try {
    const gen = spawnSync(
      "python3",
      [
        join(PROJECT_ROOT, "lab/make_model.py"),
        "--out",
        dir,
        "--repo",
        "bench/model",
        "--revision",
        "0".repeat(40),
        "--shards",
        String(files),
        "--shard-mib",
        String(mib),
      ],
      { encoding: "utf8" },
    );
    if (gen.status !== 0) throw new Error(gen.stderr);
    const shards = Array.from({ length: files }, (_, i) =>
      join(
        dir,
        `model-${String(i + 1).padStart(5, "0")}-of-${String(files).padStart(5, "0")}.safetensors`,
      ),
    );
    const total = files * mib;
    // Warm the page cache once so both read from memory, not from a cold disk.
    timed("cat", shards);
    const seq = timed("sha256sum", shards);
    const par = timed("python3", [
      join(PROJECT_ROOT, "provisioning/scripts/verify-weights.py"),
      "--manifest",
      join(dir, "manifest.json"),
      "--dir",
      dir,
    ]);
    const rows: [string, string][] = [
      ["files", `${files} × ${mib} MiB (${total} MiB), ${cpus().length} CPU cores`],
      ["sha256sum, sequential", `${seq.toFixed(2)} s  ${(total / seq).toFixed(0)} MiB/s`],
      ["verify-weights.py, parallel", `${par.toFixed(2)} s  ${(total / par).toFixed(0)} MiB/s`],
      ["speed-up", `${(seq / par).toFixed(2)}×`],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(30)} ${v}\n`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module)
  void runCommand("usage: npm run bench:verify [-- --files N --mib M]", main);
