// Command ferry receives very large media through upload portals and delivers
// every package, folder tree intact, into iconik. See README.md.
package main
