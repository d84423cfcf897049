package iconik

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// The three pagination styles of CONTRACT.md §1. Each iterator fetches lazily, yields every
// object once, and on an error yields (zero, err) and stops. Breaking out of the loop stops
// fetching.

// pageList follows a page list (style A): next_url when given (absolute or /API/...), else
// page+1 while page < pages. A 404 on a page after the first is the end of the list ("Requested
// page does not exist"); on the first page it is an error.
func pageList[T any](c *Client, ctx context.Context, method, path string, q url.Values, body any, retryPost bool) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		next, query := path, q
		seen := map[string]bool{}
		for n := 1; ; n++ {
			var pg page[T]
			_, err := c.do(ctx, call{method: method, path: next, query: query, body: body, out: &pg, retryPost: retryPost})
			if err != nil {
				if n > 1 && IsNotFound(err) {
					return
				}
				yield(zero, err)
				return
			}
			for _, o := range pg.Objects {
				if !yield(o, nil) {
					return
				}
			}
			switch {
			case pg.NextURL != "":
				next, query = pg.NextURL, nil
			case pg.Page > 0 && pg.Pages > pg.Page && len(pg.Objects) > 0:
				// No next_url but more pages declared: ask for the next page number.
				query = cloneValues(q)
				query.Set("page", strconv.Itoa(pg.Page+1))
				next = path
			default:
				return
			}
			key := next + "?" + query.Encode()
			if seen[key] || len(pg.Objects) == 0 {
				return // a server repeating itself must not loop us forever
			}
			seen[key] = true
		}
	}
}

// cursorList follows a cursor list (style B, last_id; style C, last_field_name): the next
// request carries the last object's key, until a short or empty page.
func cursorList[T any](c *Client, ctx context.Context, path string, q url.Values, perPage int, cursorParam string, key func(T) string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		query := cloneValues(q)
		query.Set("per_page", strconv.Itoa(perPage))
		last := ""
		for {
			var pg page[T]
			if err := c.get(ctx, path, query, &pg); err != nil {
				yield(zero, err)
				return
			}
			for _, o := range pg.Objects {
				if !yield(o, nil) {
					return
				}
			}
			want := perPage
			if pg.PerPage > 0 && pg.PerPage < want {
				want = pg.PerPage // the server capped per_page
			}
			if len(pg.Objects) == 0 || len(pg.Objects) < want {
				return
			}
			k := key(pg.Objects[len(pg.Objects)-1])
			if k == "" || k == last {
				return
			}
			last = k
			query.Set(cursorParam, k)
		}
	}
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q)+2)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// getPages is pageList for GET.
func getPages[T any](c *Client, ctx context.Context, path string, q url.Values) iter.Seq2[T, error] {
	return pageList[T](c, ctx, http.MethodGet, path, q, nil, false)
}

// Collect drains an iterator into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func perPage(n, def int) int {
	if n <= 0 {
		return def
	}
	if n > 100 {
		return 100
	}
	return n
}
