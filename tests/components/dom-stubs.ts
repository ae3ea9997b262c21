/**
 * What jsdom lacks and the components use: <dialog>'s showModal / close (toggling `open`, firing `close`), and
 * matchMedia (the theme store reads it when imported). Import this module before the components.
 */
const proto = HTMLDialogElement.prototype as HTMLDialogElement & Record<string, unknown>;
proto.showModal ??= function (this: HTMLDialogElement) {
  this.setAttribute('open', '');
};
proto.close ??= function (this: HTMLDialogElement) {
  if (!this.hasAttribute('open')) return;
  this.removeAttribute('open');
  this.dispatchEvent(new Event('close'));
};
window.matchMedia ??= ((query: string) => ({ matches: false, media: query, addEventListener: () => undefined, removeEventListener: () => undefined })) as unknown as typeof window.matchMedia;

export {};
