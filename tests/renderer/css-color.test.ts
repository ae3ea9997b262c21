import { describe, expect, it } from 'vitest';
import { plainColor } from '../../src/renderer/src/lib/css-color.js';

describe('plainColor', () => {
  it('resolves light-dark() for the theme showing, nested colour functions included', () => {
    expect(plainColor(' light-dark(#ffffff, #15181d)', 'light', 'x')).toBe('#ffffff');
    expect(plainColor('light-dark(#ffffff, #15181d)', 'dark', 'x')).toBe('#15181d');
    expect(plainColor('light-dark(rgba(0, 0, 0, 0.5), rgb(1, 2, 3))', 'dark', 'x')).toBe('rgb(1, 2, 3)');
    expect(plainColor('light-dark(light-dark(#111, #222), #333)', 'light', 'x')).toBe('#111');
  });

  it('passes plain colours through and falls back for what plotly cannot read', () => {
    expect(plainColor('#2f5fb3', 'dark', 'x')).toBe('#2f5fb3');
    expect(plainColor('', 'dark', '#fallback')).toBe('#fallback');
    expect(plainColor('var(--fg)', 'light', '#fallback')).toBe('#fallback');
    expect(plainColor('light-dark(#111)', 'light', '#fallback')).toBe('#fallback');
  });
});
