// Parses Mermaid files with the real Mermaid parser; exits non-zero on the first error.
// Usage: node parse.mjs FILE... ; mermaid needs a DOM (DOMPurify), so jsdom provides one.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(file, "utf8"));
    console.log(`${file}: ok (${result.diagramType})`);
  } catch (error) {
    failed += 1;
    console.error(`${file}: ${error.message ?? error}`);
  }
}
process.exit(failed ? 1 : 0);
