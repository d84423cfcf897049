// The portal page (/p/{slug}): a sender fills in who they are, drops files and
// whole folders onto Uppy's dashboard, and the files go to ferry's tus
// endpoint, large ones as parallel partials (as `ferry send` does), resuming
// by themselves after a network drop, a server restart or a page reload.
//
// The server renders the form and a JSON config (#portal-config); this file
// only adds behaviour. The package is created on the first upload, not on
// page load, so an abandoned visit leaves nothing behind.
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'
import GoldenRetriever from '@uppy/golden-retriever'
import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'

const cfg = JSON.parse(document.getElementById('portal-config').textContent)
const form = document.getElementById('sender')
const statusEl = document.getElementById('status')
const storeKey = 'ferry.portal.' + cfg.slug

// Files at least this large are sent as parallel partials joined by a tus
// final upload. 64 MiB keeps small files to one request each (a partial
// costs three round trips) while every file large enough to be limited by
// one TCP stream over a long link gets the streams it needs. Six parts: a
// browser opens at most six HTTP/1.1 connections to one host, so more parts
// would only queue; through a link of 50 ms and 20 MB/s per connection, 6
// parts measured 4.1x one stream for 256 MiB where 4 parts gave 1.9x
// (bench/portal).
export const PARALLEL_THRESHOLD = 64 * 1024 * 1024
export const PARALLEL_PARTS = 6

// Retry for about two minutes with growing pauses: long enough to ride out a
// server restart or a dropped connection, short enough to tell the sender.
const RETRY_DELAYS = [0, 1000, 2000, 3000, 5000, 8000, 13000, 20000, 30000, 30000]

function say (text, isError) {
  statusEl.textContent = text
  statusEl.className = isError ? 'err' : ''
}

async function errorMessage (res) {
  try {
    const body = await res.json()
    return body.error.message
  } catch {
    return res.statusText || 'HTTP ' + res.status
  }
}

function humanBytes (n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i]
}

// The package of this visit, kept in localStorage so that a reload (with
// Golden Retriever restoring the files) continues into the same package.
function savedPackage () {
  try { return JSON.parse(localStorage.getItem(storeKey)) } catch { return null }
}
function savePackage (p) { localStorage.setItem(storeKey, JSON.stringify(p)) }
function forgetPackage () { localStorage.removeItem(storeKey) }

let pkg = null // {id, token, url}

async function stillUploading (p) {
  const res = await fetch('/p/' + encodeURIComponent(cfg.slug) + '/packages/' + encodeURIComponent(p.id),
    { headers: { Authorization: 'Bearer ' + p.token } })
  if (!res.ok) return false
  const body = await res.json()
  return body.package.state === 'uploading'
}

async function createPackage () {
  if (!form.reportValidity()) throw new Error('Fill in the form above first.')
  const fd = new FormData(form)
  const res = await fetch('/p/' + encodeURIComponent(cfg.slug) + '/packages', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      name: fd.get('name') || '',
      sender_email: fd.get('sender_email') || '',
      description: fd.get('description') || '',
      password: fd.get('password') || ''
    })
  })
  if (!res.ok) throw new Error(await errorMessage(res))
  const body = await res.json()
  return { id: body.package.id, token: body.upload_token, url: body.upload_url }
}

// ensurePackage runs before every upload starts: it reuses this visit's
// package while the server still lets it receive files, else creates one.
async function ensurePackage () {
  if (pkg) return pkg
  const saved = savedPackage()
  if (saved && await stillUploading(saved)) {
    pkg = saved
  } else {
    pkg = await createPackage()
    savePackage(pkg)
  }
  uppy.getPlugin('Tus').setOptions({ endpoint: pkg.url, headers: { Authorization: 'Bearer ' + pkg.token } })
  for (const el of form.elements) el.disabled = true // the package is named now
  return pkg
}

// tusOptionsFor gives each file what ferry needs to admit it before a byte
// is stored: its path in the package, and for partials the whole file's size.
function tusOptionsFor (file) {
  const rel = relativePathOf(file)
  if (file.size < PARALLEL_THRESHOLD) return {}
  return {
    parallelUploads: PARALLEL_PARTS,
    metadataForPartialUploads: {
      relativePath: rel,
      filename: file.name,
      file_size: String(file.size)
    }
  }
}

// Uppy keeps the folder path of a dropped file in meta.relativePath and sends
// the string "null" for loose files; ferry wants the path without a leading
// slash.
function relativePathOf (file) {
  const rel = file.meta.relativePath
  if (!rel || rel === 'null') return file.name
  return rel.replace(/^\/+/, '')
}

const restrictions = {}
if (cfg.limits.max_file_size > 0) restrictions.maxFileSize = cfg.limits.max_file_size
if (cfg.limits.max_package_size > 0) restrictions.maxTotalFileSize = cfg.limits.max_package_size
if (cfg.limits.max_file_count > 0) restrictions.maxNumberOfFiles = cfg.limits.max_file_count
if (cfg.limits.allowed_extensions && cfg.limits.allowed_extensions.length) {
  restrictions.allowedFileTypes = cfg.limits.allowed_extensions.map(e => '.' + e.replace(/^\./, ''))
}

const uppy = new Uppy({
  id: 'ferry-' + cfg.slug,
  autoProceed: false,
  restrictions,
  onBeforeFileAdded: (file) => {
    const ext = (file.name.split('.').pop() || '').toLowerCase()
    const denied = (cfg.limits.denied_extensions || []).map(e => e.replace(/^\./, '').toLowerCase())
    if (file.name.includes('.') && denied.includes(ext)) {
      uppy.info(file.name + ': this portal does not accept .' + ext + ' files.', 'error', 5000)
      return false
    }
    return true
  }
})
  .use(Dashboard, {
    inline: true,
    target: '#drop',
    width: '100%',
    height: 420,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    fileManagerSelectionType: 'both',
    note: cfg.note
  })
  .use(Tus, {
    endpoint: '/uploads/',
    retryDelays: RETRY_DELAYS,
    limit: 4,
    removeFingerprintOnSuccess: true,
    allowedMetaFields: ['relativePath', 'filename', 'filetype']
  })
  .use(GoldenRetriever)

uppy.on('file-added', (file) => {
  uppy.setFileMeta(file.id, { relativePath: relativePathOf(file), filename: file.name, filetype: file.type || 'application/octet-stream' })
  uppy.setFileState(file.id, { tus: { ...(file.tus || {}), ...tusOptionsFor(file) } })
})

uppy.addPreProcessor(async () => {
  try {
    await ensurePackage()
    say('')
  } catch (err) {
    say(err.message, true)
    throw err
  }
})

uppy.on('upload-error', (file, err) => {
  say((file ? relativePathOf(file) + ': ' : '') + (err && err.message ? err.message : 'upload failed'), true)
})

uppy.on('complete', async (result) => {
  if (!pkg || result.failed.length > 0 || result.successful.length === 0) return
  if (uppy.getFiles().some(f => !f.progress.uploadComplete)) return
  const res = await fetch('/p/' + encodeURIComponent(cfg.slug) + '/packages/' + encodeURIComponent(pkg.id) + '/finalize',
    { method: 'POST', headers: { Authorization: 'Bearer ' + pkg.token } })
  if (!res.ok) {
    say(await errorMessage(res), true)
    return
  }
  const body = await res.json()
  forgetPackage()
  uppy.clear()
  showReceived(body.package, body.receipt_url)
})

function showReceived (p, receiptURL) {
  document.getElementById('upload').hidden = true
  const done = document.getElementById('received')
  done.querySelector('[data-name]').textContent = p.name
  done.querySelector('[data-count]').textContent = String(p.file_count)
  done.querySelector('[data-size]').textContent = humanBytes(p.total_size)
  done.querySelector('[data-receipt]').href = receiptURL
  done.hidden = false
  done.focus()
}

// A reload continues into the saved package. The upload token goes on the
// tus requests at once: Golden Retriever restores uploads that were under
// way, and resuming them does not run the pre-processor that would set it.
const saved = savedPackage()
if (saved) {
  pkg = saved
  uppy.getPlugin('Tus').setOptions({ endpoint: pkg.url, headers: { Authorization: 'Bearer ' + pkg.token } })
  stillUploading(saved).then(ok => {
    if (!ok) {
      forgetPackage()
      pkg = null
      return
    }
    if (uppy.getFiles().length > 0) {
      for (const el of form.elements) el.disabled = true
      say('Your earlier upload was restored: press upload to continue it.')
    }
  })
}

window.ferryUppy = uppy // for the browser tests and curious senders
