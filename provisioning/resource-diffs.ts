/**
 * How the provisioning resources (components/remote-step.ts) compare their stored state with new
 * inputs, as pure functions: the dynamic provider only calls these, so the logic is tested without
 * an engine, and editing it does not change the provider text serialized into the state.
 *
 * Any input may be unknown: during a preview the engine passes the sentinel string below in place of
 * a value that depends on a resource not yet created (a replaced instance's address, a new node's
 * host keys), whole objects and arrays included (@pulumi/pulumi runtime/rpc.ts `unknownValue`). And
 * any stored state may have been written by an earlier release of this program.
 */
import { targetHostKeys, type StoredSshTarget } from "./ssh";

/** The engine's stand-in for a value not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Whether `v`, or anything inside it, is not known yet. */
export function isUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(isUnknown);
  if (v && typeof v === "object") return Object.values(v).some(isUnknown);
  return false;
}

export interface Diff {
  readonly changes: boolean;
  readonly replaces: string[];
  readonly deleteBeforeReplace: boolean;
}

/** A step's connection as stored: no key (it is never kept), host keys in either release's form. */
export type StoredConnection = Omit<StoredSshTarget, "privateKey">;

/** What a step's state holds (components/remote-step.ts writes it). */
export interface StepState {
  readonly connection: StoredConnection;
  readonly node: string;
  readonly step: string;
  readonly create: string;
  readonly delete?: string;
  readonly triggers: string[];
  readonly rebootMarker?: string;
  readonly changed: boolean;
  readonly seconds: number;
  readonly tail: string;
}

/** New inputs of a step, each possibly unknown during a preview. */
export interface StepInputs {
  readonly connection: unknown;
  readonly create: unknown;
  readonly delete?: unknown;
  readonly triggers: unknown;
}

const RERUN = "rerun:";
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((t): t is string => typeof t === "string") : [];

function connectionOf(v: unknown): Partial<StoredConnection> | undefined {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as StoredConnection) : undefined;
}

/**
 * Whether the step must run again: what it runs changed (its command, its triggers: the digests of
 * its scripts and inputs and of the steps it builds on), or a re-run was asked for with a token not
 * seen before. Unknown means yes. How the node is reached (user, host keys) and the undo command are
 * not what it runs: a change there is recorded without running the step.
 */
export function stepNeedsRun(olds: StepState, news: StepInputs): boolean {
  if (isUnknown(news.create) || isUnknown(news.triggers)) return true;
  const oldTriggers = strings(olds.triggers);
  const newTriggers = strings(news.triggers);
  const plain = (ts: string[]) => JSON.stringify(ts.filter((t) => !t.startsWith(RERUN)));
  return (
    olds.create !== news.create ||
    plain(oldTriggers) !== plain(newTriggers) ||
    newTriggers.some((t) => t.startsWith(RERUN) && !oldTriggers.includes(t))
  );
}

/**
 * A step's diff: another machine (host or port: a replaced instance, a host moved) replaces the
 * step, undoing it on the old machine first; anything else that changed updates it (running it only
 * when stepNeedsRun). An unknown address may be another machine: planned as a replacement, decided
 * again with the real values when the update runs.
 */
export function stepDiff(olds: StepState, news: StepInputs): Diff {
  const oldConn = connectionOf(olds.connection) ?? {};
  const newConn = connectionOf(news.connection);
  const moved =
    newConn === undefined ||
    isUnknown(newConn.host) ||
    isUnknown(newConn.port) ||
    oldConn.host !== newConn.host ||
    oldConn.port !== newConn.port;
  const reached =
    newConn === undefined ||
    isUnknown(newConn) ||
    oldConn.user !== newConn.user ||
    JSON.stringify(targetHostKeys(oldConn as StoredSshTarget)) !==
      JSON.stringify(targetHostKeys(newConn as StoredSshTarget)) ||
    oldConn.hostKeys === undefined;
  const undo = isUnknown(news.delete) || (olds.delete ?? "") !== (news.delete ?? "");
  return {
    changes: moved || reached || undo || stepNeedsRun(olds, news),
    replaces: moved ? ["connection"] : [],
    deleteBeforeReplace: true,
  };
}

/** The deploy key's stored state. */
export interface DeployKeyState {
  readonly comment?: string;
  readonly publicKey?: string;
  readonly privateKey?: string;
}

/**
 * A deploy key never changes once made, whatever the new inputs or the provider's serialized text
 * (which differs between tsx and ts-node, and with every upgrade): only a state that has lost its
 * key (written by the release whose default update dropped it) is made again.
 */
export function deployKeyDiff(olds: DeployKeyState): Diff {
  const whole = typeof olds.publicKey === "string" && typeof olds.privateKey === "string";
  return { changes: !whole, replaces: [], deleteBeforeReplace: false };
}

/** The console host keys' stored state, in either release's form. */
export interface ConsoleHostKeyState {
  readonly instanceId?: string;
  readonly hostKeys?: string[];
  readonly hostKey?: string;
}

/**
 * Host keys are read again only for another instance (an unknown one may be another); a state of
 * the release that kept one `hostKey` is updated to the list without reading the console again.
 */
export function consoleHostKeyDiff(
  olds: ConsoleHostKeyState,
  news: { instanceId?: unknown; region?: unknown },
): Diff {
  const other = isUnknown(news.instanceId) || olds.instanceId !== news.instanceId;
  return {
    changes: other || olds.hostKeys === undefined,
    replaces: other ? ["instanceId"] : [],
    deleteBeforeReplace: false,
  };
}

/**
 * A step's undo command: its step's part of undo.sh, or nothing when undo.sh is gone, because the
 * bundle's undo ran first and undid every step still recorded (a replaced node: the engine's
 * delete-before-replace order follows property dependencies, not dependsOn). Pure.
 */
export function stepUndoCommand(undoScript: string, step: string): string {
  return `if [ -f ${undoScript} ]; then bash ${undoScript} ${step}; else echo '[qwen-vl undo ${step}] nothing left to undo: the bundle was undone first, and with it every step'; fi`;
}

/** A stored undo command, with the guard added to one written by an earlier release. Pure. */
export function storedUndoCommand(stored: string): string {
  const m = /^bash (\/\S+\/undo\.sh) ([\w-]+)$/.exec(stored);
  return m ? stepUndoCommand(m[1]!, m[2]!) : stored;
}
