// Copies the built client (dist/index.js, one self-contained ES module) to where the
// service's demo page serves it from, inside the Python package so its wheel carries it.
// tests/packaging/test_web_client_demo_asset.py fails while the copy differs from a build.
import { copyFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const target = resolve(packageDir, "../../token_service/http/web/ivs-token-client.js");
copyFileSync(resolve(packageDir, "dist/index.js"), target);
console.log(`copied dist/index.js to ${target}`);
