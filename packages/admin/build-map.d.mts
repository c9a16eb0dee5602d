// Types of build-map.mjs, for the TypeScript that imports it (the browser test).
export declare const mapScript: string
export declare const buildMap: () => Promise<void>
export declare const mapScriptText: () => Promise<string>
export declare const inlineMapScript: { readonly name: string; readonly setup: (builder: unknown) => void }
