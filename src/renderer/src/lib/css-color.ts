/**
 * The theme's colours as plain values for libraries that cannot read CSS (plotly rejects `light-dark(…)` and
 * `var(…)`: "Invalid color specifier", then falls back to dark text on a dark background). Pure, unit-tested.
 */

/** Split a CSS argument list at its top-level commas: `rgba(1, 2, 3, 0.5), #fff` → two parts. */
function topLevelArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(s.slice(start).trim());
  return out;
}

/**
 * A custom property's value (as `getPropertyValue('--fg')` returns it) as a colour plotly accepts: `light-dark(a, b)`
 * resolved for `scheme` (nested ones too); `fallback` for anything still not plain (a `var(…)`, an empty value).
 */
export function plainColor(raw: string, scheme: 'light' | 'dark', fallback: string): string {
  let v = raw.trim();
  for (let guard = 0; guard < 8; guard++) {
    const m = /^light-dark\((.*)\)$/s.exec(v);
    if (!m) break;
    const args = topLevelArgs(m[1]!);
    if (args.length !== 2) return fallback;
    v = (scheme === 'dark' ? args[1]! : args[0]!).trim();
  }
  if (!v || /\b(var|light-dark|color-mix)\(/.test(v)) return fallback;
  return v;
}
