// Builds the console into ../src/perpx/console/static (run: npm ci && npm run build).
// Deterministic: same sources and lockfile, same bytes (no timestamps, no hashes in names).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const out = "../src/perpx/console/static";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { trading: "src/trading/main.ts", operator: "src/operator/main.ts" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: out,
  legalComments: "none",
  logLevel: "warning",
});

for (const name of readdirSync("public")) copyFileSync(join("public", name), join(out, name));
copyFileSync("node_modules/lightweight-charts/LICENSE", join(out, "LICENSE.lightweight-charts.txt"));
