// Builds the portal page's and the console's bundles into internal/web/static/ with esbuild.
// The output is committed (go build needs no npm); scripts/web runs this, and
// TestWebBundleMatchesItsSources fails when the committed files are stale.
import * as esbuild from 'esbuild'

await esbuild.build({
  entryPoints: { portal: 'src/portal.js', console: 'src/console.js' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: '../internal/web/static',
  legalComments: 'linked',
  logLevel: 'warning',
  // The same inputs give the same bytes, so the staleness test can compare.
  sourcemap: false
})
