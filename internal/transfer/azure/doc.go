// Package azure uploads a file to an Azure block blob through its SAS URL:
// one Put Blob for small files, else parallel Put Block with deterministic
// block ids and Content-MD5, then Put Block List. It never logs the SAS.
package azure
