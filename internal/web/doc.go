// Package web is ferry's HTTP surface: the JSON API under /api/v1 (with its
// OpenAPI document), the public portal flow, download links, minimal
// server-rendered pages, and the auth that guards them. It must never return
// data to an unauthenticated caller of an admin route, never echo a secret
// (password, token) and never stream a file it has not authorised.
package web
