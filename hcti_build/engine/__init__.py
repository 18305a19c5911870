"""The engine layer: finding and launching Chromium, one browser with a pool of pages on a private event-loop
thread, the sandbox every request of a render passes, and one render as a chain of short steps. It knows the
leaves (options, errors, files, network) and nothing above them: the store knows it only by its shape
(`hcti_build.renderer.Renderer`)."""
