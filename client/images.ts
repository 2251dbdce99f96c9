/**
 * Images for a request: a URL is passed as it is (the server fetches it); a local file becomes a
 * data URL, resized with sharp so that it stays within the deployment's max pixels (aspect ratio
 * kept) and re-encoded sensibly: PNG when it has transparency or is a PNG with few colours' worth of
 * bytes, JPEG (quality 90) otherwise.
 */
import { readFile } from "node:fs/promises";
import sharp from "sharp";

export type ImageInput =
  string | { readonly path: string } | { readonly url: string } | { readonly data: Buffer };

export interface PreparedImage {
  readonly url: string;
  readonly width?: number;
  readonly height?: number;
  readonly resized: boolean;
}

/** Largest width × height ≤ maxPixels with the same aspect ratio (what the Qwen2-VL processor would do anyway). */
export function fitWithin(
  width: number,
  height: number,
  maxPixels: number,
): { width: number; height: number } {
  if (width * height <= maxPixels) return { width, height };
  const scale = Math.sqrt(maxPixels / (width * height));
  let w = Math.max(1, Math.floor(width * scale));
  let h = Math.max(1, Math.floor(height * scale));
  while (w * h > maxPixels) {
    if (w >= h) w -= 1;
    else h -= 1;
  }
  return { width: w, height: h };
}

function isUrl(s: string): boolean {
  return /^(https?:|data:)/i.test(s);
}

/** An image the user named cannot be read (missing, unreadable, not an image): exit 2. */
export class ImageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

async function readImage(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageError(
      code === "ENOENT"
        ? `image ${path}: no such file (give a local path or an http(s) URL)`
        : code === "EISDIR"
          ? `image ${path}: is a folder, not an image file`
          : `image ${path}: cannot be read (${code ?? (e as Error).message})`,
    );
  }
}

export async function prepareImage(input: ImageInput, maxPixels: number): Promise<PreparedImage> {
  if (typeof input === "string" && isUrl(input)) return { url: input, resized: false };
  if (typeof input === "object" && "url" in input) return { url: input.url, resized: false };
  const data =
    typeof input === "string"
      ? await readImage(input)
      : "path" in input
        ? await readImage(input.path)
        : input.data;
  const name = typeof input === "string" ? input : "path" in input ? input.path : "(bytes)";
  const img = sharp(data, { failOn: "error" });
  const meta = await img.metadata().catch(() => undefined);
  if (!meta?.width || !meta.height)
    throw new ImageError(
      `image ${name}: not an image (JPEG, PNG, WebP, GIF, TIFF or AVIF expected)`,
    );
  const w0 = meta.autoOrient?.width ?? meta.width;
  const h0 = meta.autoOrient?.height ?? meta.height;
  const target = fitWithin(w0, h0, maxPixels);
  const resized = target.width !== w0 || target.height !== h0;
  const keepPng = meta.hasAlpha || (meta.format === "png" && !resized && data.length < 512 * 1024);
  let pipeline = sharp(data).rotate();
  if (resized) pipeline = pipeline.resize(target.width, target.height, { fit: "fill" });
  const out = keepPng
    ? await pipeline.png().toBuffer()
    : await pipeline.jpeg({ quality: 90, mozjpeg: true }).toBuffer();
  return {
    url: `data:image/${keepPng ? "png" : "jpeg"};base64,${out.toString("base64")}`,
    width: target.width,
    height: target.height,
    resized,
  };
}
