/** Prints bench rows [measure, value, note] as a Markdown table under `title`. */
export function printTable(title: string, rows: [string, string, string][]): void {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${title}\n`);
  console.log(`| ${'measure'.padEnd(w0)} | ${'value'.padEnd(w1)} | note`);
  console.log(`|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|------`);
  for (const [a, b, c] of rows) console.log(`| ${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c}`);
}
