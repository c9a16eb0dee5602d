// One test project per package. vitest 3.2 reads the list through `test.projects`
// in vitest.config.ts (the bare workspace file is deprecated there); this module
// is the single place the list lives.
export const projects = ["packages/*"]
