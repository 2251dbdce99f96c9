/**
 * Parse a raw stack config (sections as plain objects) into a typed `StackConfig`, or collect every
 * problem. Sections are parsed independently so that an error in one does not hide errors in another.
 */
import { z } from "zod";
import { closest, type Issue, pathToString } from "./errors";
import { REQUIRED_SECTIONS, SECTIONS, type SectionName, type StackConfig } from "./schema";
import { controlCharacterIssues } from "./text";

export interface ParseResult {
  /** Sections that parsed; all of them when `issues` is empty. */
  readonly sections: Partial<StackConfig>;
  readonly issues: Issue[];
}

export function parseSections(raw: Readonly<Record<string, unknown>>): ParseResult {
  const issues: Issue[] = [];
  const sections: Record<string, unknown> = {};
  const known = Object.keys(SECTIONS) as SectionName[];

  for (const key of Object.keys(raw)) {
    if (!(known as string[]).includes(key)) {
      const hint = closest(key, known);
      issues.push({
        path: key,
        value: raw[key],
        message: `unknown section${hint ? ` (did you mean "${hint}"?)` : ""}; allowed: ${known.join(", ")}`,
      });
    }
  }

  for (const name of known) {
    // Own keys only: a "__proto__" section must not lend its settings to the others.
    const value = Object.hasOwn(raw, name) ? raw[name] : undefined;
    if (value === undefined && REQUIRED_SECTIONS.includes(name)) {
      issues.push({ path: name, value, message: `required section is missing` });
      continue;
    }
    // Control characters anywhere in the section, whatever the field: said once, at the string.
    const control = controlCharacterIssues(value, [name]);
    issues.push(...control);
    const schema = SECTIONS[name] as z.ZodType;
    const result = schema.safeParse(value ?? {}, { reportInput: true });
    if (result.success) sections[name] = result.data;
    else
      issues.push(
        ...zodIssues(result.error, [name], value ?? {}, schema).filter(
          (i) => !control.some((c) => c.path === i.path),
        ),
      );
  }
  return { sections: sections as Partial<StackConfig>, issues };
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/** The object schema found at `path` inside `schema`, unwrapping optional/default/array. */
function objectShapeAt(
  schema: z.ZodType,
  path: readonly PropertyKey[],
  root: unknown,
): string[] | undefined {
  let cur: z.ZodType | undefined = schema;
  let value: unknown = root;
  const unwrap = (s: z.ZodType): z.ZodType => {
    let x = s;
    for (;;) {
      if (x instanceof z.ZodOptional || x instanceof z.ZodDefault) x = x.unwrap() as z.ZodType;
      else return x;
    }
  };
  const selectUnion = (s: z.ZodType, v: unknown): z.ZodType => {
    // A plain union (true | { depth, … }): the object option describes an object value.
    if (
      s instanceof z.ZodUnion &&
      !(s instanceof z.ZodDiscriminatedUnion) &&
      v &&
      typeof v === "object"
    )
      return (s.options as z.ZodType[]).find((o) => o instanceof z.ZodObject) ?? s;
    if (s instanceof z.ZodDiscriminatedUnion && v && typeof v === "object") {
      const kind = (v as Record<string, unknown>)["kind"];
      for (const option of s.options as z.ZodType[]) {
        if (option instanceof z.ZodObject && option.shape["kind"] instanceof z.ZodLiteral) {
          if ((option.shape["kind"] as z.ZodLiteral).values.has(kind as never)) return option;
        }
      }
    }
    return s;
  };
  for (const p of path) {
    if (!cur) return undefined;
    cur = selectUnion(unwrap(cur), value);
    if (cur instanceof z.ZodObject) cur = cur.shape[p as string] as z.ZodType | undefined;
    else if (cur instanceof z.ZodArray) cur = cur.element as z.ZodType;
    else return undefined;
    value =
      value && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[p] : undefined;
  }
  if (!cur) return undefined;
  cur = selectUnion(unwrap(cur), value);
  return cur instanceof z.ZodObject ? Object.keys(cur.shape) : undefined;
}

export function zodIssues(
  error: z.ZodError,
  prefix: readonly PropertyKey[],
  root: unknown,
  schema: z.ZodType,
): Issue[] {
  const out: Issue[] = [];
  for (const issue of error.issues) {
    const rel = issue.path as PropertyKey[];
    if (issue.code === "unrecognized_keys") {
      const allowed = objectShapeAt(schema, rel, root) ?? [];
      for (const key of issue.keys) {
        const hint = closest(key, allowed);
        out.push({
          path: pathToString([...prefix, ...rel, key]),
          value: valueAt(root, [...rel, key]),
          message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ""}; allowed: ${allowed.join(", ")}`,
        });
      }
      continue;
    }
    let message = issue.message;
    const given = valueAt(root, rel);
    if (typeof given === "number" && !Number.isFinite(given)) {
      message = `is ${String(given)}, not a finite number; ${message}`;
    } else if (issue.code === "invalid_value" && "values" in issue) {
      message = `must be one of: ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    } else if (issue.code === "invalid_type" && valueAt(root, rel) === undefined) {
      message = `required (${issue.expected})`;
    }
    out.push({ path: pathToString([...prefix, ...rel]), value: valueAt(root, rel), message });
  }
  return out;
}
