package main_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
)

// A browser (headless Chromium, as the web UI's tests) opens micro web's page, follows the
// example's link and calls Example.Call from the example's page, through micro web's proxy.
func TestBrowserOpensMicroWebAndCallsTheExample(t *testing.T) {
	path, err := configdtest.ChromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Consul(t)
	w := consulWatch(t, srv.Addr)
	example(t, srv.Addr, "example", "example-a", "10s")
	waitNodes(t, w, "example", 1)
	web := gatewayProc(t, srv.Addr, "web")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, configdtest.WaitLimit)
	defer stop()
	err = chromedp.Do(ctx,
		chromedp.Navigate(web+"/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/example/"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/example/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#call button`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#call input[name=name]").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#call input[name=name]`), "browser"),
		chromedp.Click(chromedp.CSS(`#call button`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("answer").textContent.trim() !== ""`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatal(err)
	}
	node, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("node").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("answer").textContent.trim()`))
	if err != nil {
		t.Fatal(err)
	}
	if node != "example-a" || answer != `{"msg":"Hello browser"}` {
		t.Fatalf("node %q, answer %q", node, answer)
	}
}
