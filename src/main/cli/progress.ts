/**
 * Progress on stderr: a live line with rate and ETA on a terminal, a few plain lines otherwise (logs, CI).
 */
export class Progress {
  private readonly started = Date.now();
  private lastPrinted = -1;

  constructor(
    private readonly label: string,
    private readonly unit = '',
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, total: number): void {
    const tty = this.stream.isTTY;
    const fraction = total > 0 ? done / total : 1;
    // Off a terminal, print at most every 25 % so logs stay readable.
    const step = Math.floor(fraction * 4);
    if (!tty && step === this.lastPrinted && done !== total) return;
    this.lastPrinted = step;
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 && done < total ? ` · ETA ${formatSeconds((total - done) / rate)}` : '';
    const line = `${this.label}: ${done}/${total}${this.unit ? ` ${this.unit}` : ''} (${Math.round(fraction * 100)}%)${eta}`;
    this.stream.write(tty ? `\r\x1b[K${line}${done >= total ? '\n' : ''}` : `${line}\n`);
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
