// The reference page of bench/portal: a plain Uppy 6 (core, dashboard, tus)
// with its defaults, as a site would set it up in front of stock tusd. Built
// by the benchmark at run time with the esbuild from web/ (never committed).
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'
import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'

const endpoint = new URLSearchParams(window.location.search).get('endpoint')
window.benchUppy = new Uppy()
  .use(Dashboard, { inline: true, target: '#drop', proudlyDisplayPoweredByUppy: false })
  .use(Tus, { endpoint })
