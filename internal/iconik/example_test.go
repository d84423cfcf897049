package iconik_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ferryhq/ferry/internal/iconik"
)

// Connect, check the connection and list the storages a delivery may use.
func ExampleClient_Verify() {
	c, err := iconik.New(iconik.Options{BaseURL: "https://app.iconik.io", AppID: "app-id", Token: "token"})
	if err != nil {
		log.Fatal(err)
	}
	v, err := c.Verify(context.Background())
	if iconik.IsUnauthorized(err) {
		log.Fatal("the App-ID or token is wrong")
	} else if err != nil {
		log.Fatal(err)
	}
	for _, p := range v.Problems() {
		fmt.Println("problem:", p)
	}
	for _, s := range v.Storages {
		fmt.Println(s.Name, s.Selectable, s.Reason)
	}
}

// Iterate a page list; breaking out of the loop stops fetching.
func ExampleClient_CollectionList() {
	c, _ := iconik.New(iconik.Options{AppID: "app-id", Token: "token"})
	for col, err := range c.CollectionList(context.Background(), iconik.CollectionListParams{IsRoot: iconik.Bool(true)}) {
		if err != nil {
			log.Fatal(err)
		}
		if col.Title == "Portal Downloads" {
			fmt.Println(col.ID)
			break
		}
	}
}
