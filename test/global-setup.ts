/**
 * Before any test file runs, in vitest's main process: what the lab's end-to-end tests need that
 * takes minutes on a fresh machine and runs synchronously (the engine's Go build, the lab's Debian
 * packages, the node image, the wheel mirror, the stand-in weights, moto's environment). Done in a
 * test worker, those calls block its event loop past vitest's RPC timeout ("Timeout calling
 * onTaskUpdate") although every test passes. Cached: a second run costs seconds. Skipped, as the
 * lab tests are, where the lab cannot run (not root).
 */
import { readStackFile } from "../config/stack-file";
import { ensureCli } from "../engine/pulumi";
import { checkHost, ensureBaseImage } from "../lab/lab";
import { ensureModel, ensureS3Venv, ensureWheels } from "../lab/mirror";
import { planStack } from "../plan";

export default function setup(): void {
  // QWEN_VL_NO_LAB=1: the unit tests alone, as root too (a lab of another checkout may be up).
  if (process.getuid?.() !== 0 || process.env["QWEN_VL_NO_LAB"]) return;
  const log = (s: string) => process.stderr.write(`[test setup] ${s}\n`);
  try {
    checkHost(log);
  } catch (e) {
    log(`lab unavailable (${(e as Error).message}); the lab tests will say why they skip`);
    return;
  }
  ensureCli();
  ensureBaseImage(log);
  for (const stack of ["lab-single", "lab"]) {
    const plan = planStack(readStackFile(stack).sections, { stack });
    ensureWheels(plan, log);
    ensureModel(plan, log);
  }
  ensureS3Venv(log);
}
