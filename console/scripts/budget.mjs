// The JavaScript budget: every script the build ships, gzipped, must fit in BUDGET_KB
// (300 KB unless set). Prints each file and the total; exits 1 over budget.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const budget = Number(process.env.BUDGET_KB ?? 300) * 1024;
const assets = join(import.meta.dirname, "..", "dist", "assets");
let total = 0;
for (const name of readdirSync(assets)
  .filter((file) => file.endsWith(".js"))
  .sort()) {
  const size = gzipSync(readFileSync(join(assets, name)), { level: 9 }).length;
  total += size;
  console.log(`${(size / 1024).toFixed(1).padStart(8)} KB  ${name}`);
}
const verdict = total <= budget ? "within" : "OVER";
console.log(
  `${(total / 1024).toFixed(1).padStart(8)} KB  gzipped JavaScript in all, ${verdict} the budget of ${budget / 1024} KB`,
);
process.exit(total <= budget ? 0 : 1);
