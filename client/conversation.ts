/**
 * A conversation that keeps its history within a token budget: the system prompt always stays; the
 * oldest turns go first (or are folded into a summary, when a summarise hook is given). Token counts
 * are estimates (≈ 4 characters a token; an image ≈ its pixels / 784 visual tokens) unless the
 * server's usage numbers are available, which are preferred after each answer.
 */
import type { ChatOptions, ChatResult, Message, QwenVlClient } from "./client";
import type { ImageInput } from "./images";

export interface ConversationOptions {
  readonly system?: string;
  /** Budget for the prompt (history + new message), in tokens. Default 6000. */
  readonly budgetTokens?: number;
  /** Visual tokens assumed per image in the history. Default 1280 (the shipped stacks' max pixels). */
  readonly tokensPerImage?: number;
  /** Replaces dropped turns with a summary message (e.g. ask the model to summarise them). */
  readonly summarise?: (dropped: readonly Message[]) => Promise<string>;
}

export function estimateTokens(m: Message, tokensPerImage: number): number {
  if (typeof m.content === "string") return Math.ceil(m.content.length / 4) + 4;
  return m.content.reduce(
    (n, p) => n + (p.type === "text" ? Math.ceil(p.text.length / 4) : tokensPerImage),
    4,
  );
}

export class Conversation {
  readonly history: Message[] = [];
  private readonly budget: number;
  private readonly perImage: number;

  constructor(
    private readonly client: QwenVlClient,
    private readonly opts: ConversationOptions = {},
  ) {
    this.budget = opts.budgetTokens ?? 6000;
    this.perImage = opts.tokensPerImage ?? 1280;
    if (opts.system) this.history.push({ role: "system", content: opts.system });
  }

  tokens(): number {
    return this.history.reduce((n, m) => n + estimateTokens(m, this.perImage), 0);
  }

  /** Drops (or summarises) the oldest turns until the history fits the budget. */
  async trim(): Promise<Message[]> {
    const dropped: Message[] = [];
    const first = this.opts.system ? 1 : 0;
    while (this.tokens() > this.budget && this.history.length > first + 1)
      dropped.push(...this.history.splice(first, 1));
    if (dropped.length && this.opts.summarise) {
      const summary = await this.opts.summarise(dropped);
      this.history.splice(first, 0, {
        role: "system",
        content: `Summary of the earlier conversation: ${summary}`,
      });
      while (this.tokens() > this.budget && this.history.length > first + 2)
        dropped.push(...this.history.splice(first + 1, 1));
    }
    return dropped;
  }

  async say(
    text: string,
    images: readonly ImageInput[] = [],
    opts: ChatOptions = {},
  ): Promise<ChatResult> {
    this.history.push(await this.client.userMessage(text, images));
    await this.trim();
    const result = await this.client.chat(this.history, opts);
    this.history.push({ role: "assistant", content: result.text });
    return result;
  }
}
