/** A reactive "now" that ticks once a second while anything reads it (ETAs, elapsed times). */
import { createSubscriber } from 'svelte/reactivity';

let current = Date.now();
const subscribe = createSubscriber((update) => {
  const timer = setInterval(() => {
    current = Date.now();
    update();
  }, 1000);
  return () => clearInterval(timer);
});

export function now(): number {
  subscribe();
  return current;
}
