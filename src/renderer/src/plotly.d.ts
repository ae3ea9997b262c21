/** The part of plotly.js the renderer uses (the cartesian dist bundle ships no types). */
declare module 'plotly.js-cartesian-dist-min' {
  export interface PlotlyPoint {
    x: unknown;
    y: unknown;
    z?: unknown;
    pointIndex?: number;
    curveNumber: number;
  }
  export interface PlotlyHTMLElement extends HTMLElement {
    on(event: 'plotly_click' | 'plotly_hover', handler: (event: { points: PlotlyPoint[] }) => void): void;
    removeAllListeners?(event: string): void;
  }
  export interface ImageOptions {
    format: 'png' | 'svg' | 'jpeg' | 'webp';
    width?: number;
    height?: number;
    scale?: number;
    filename?: string;
  }
  type Data = Record<string, unknown>[];
  type Layout = Record<string, unknown>;
  interface PlotlyStatic {
    react(el: HTMLElement, data: Data, layout: Layout, config?: Record<string, unknown>): Promise<PlotlyHTMLElement>;
    purge(el: HTMLElement): void;
    toImage(figure: HTMLElement | { data: Data; layout: Layout }, opts: ImageOptions): Promise<string>;
    Plots: { resize(el: HTMLElement): Promise<void> | void };
  }
  const Plotly: PlotlyStatic;
  export default Plotly;
}
