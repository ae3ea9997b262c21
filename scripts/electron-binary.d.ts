/** Where the Electron binary is, or why there is none (see electron-binary.js). */
export function electronBinary(): { path: string } | { missing: string };
