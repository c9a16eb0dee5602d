#!/usr/bin/env node
// The herd command. The sources are TypeScript, run through tsx's loader so that
// `npx herd` works straight after `npm ci` with no build step, and so that a
// `herd.config.ts` can be imported as it is.
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")
