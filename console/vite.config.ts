import { resolve } from "node:path";
import { tanstackRouter } from "@tanstack/router-plugin/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The console is a static site: index.html, and silent-renew.html for the identity provider's
// silent sign-in in a hidden frame. Where the API and the provider are is read at run time
// from config.json (see src/config.ts), so one build serves every deployment.
export default defineConfig({
  plugins: [tanstackRouter({ target: "react", autoCodeSplitting: true }), react()],
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1", strictPort: true },
  build: {
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, "index.html"),
        silent: resolve(import.meta.dirname, "silent-renew.html"),
      },
    },
  },
});
