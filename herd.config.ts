/**
 * The herd `npx herd up` (npm start) and `npx herd serve <name>` run here:
 * the default herd of PROTOCOL.md section 1, five servers on loopback, the
 * same that the installed command runs in a folder with no config. Copy it
 * and change it for a herd of your own; every field is described in the
 * README ("Configuration").
 */
import { defaultHerd } from "./packages/cli/src/DefaultHerd.ts"

export default defaultHerd
