// hloop serve STORE: an embedded static web server for a store.
#include <cstdio>

#include "cli/common.h"
#include "serve/http_server.h"
#include "server/host_port.h"
#include "server/stop_signals.h"

namespace hloop::cli {

namespace {
struct ServeArgs {
  std::string store, listen = "127.0.0.1:8080";
};

int RunServe(const ServeArgs& a) {
  auto where = server::ParseHostPort(a.listen);
  if (!where.ok()) {
    Fail(where.status().Annotate("--listen"));
    return kExitUsage;
  }
  server::StopSignals signals;  // the first thread
  serve::HttpServer server(serve::ServeOptions{.root = a.store, .listen = *where});
  Status st = server.Listen();
  if (!st.ok()) return Fail(st);
  signals.OnStop([&] { server.Stop(); });
  const server::HostPort bound{where->host, uint16_t(server.port())};
  std::printf("serving %s on http://%s/\n", a.store.c_str(), bound.ToString().c_str());
  std::fflush(stdout);
  st = server.Run();
  signals.Finishing();
  if (!st.ok()) return Fail(st);
  return kExitOk;
}
}  // namespace

Command ServeCommand() {
  return {"serve",
          "Serve a store over HTTP (for tests and quick starts; use any web server in production)",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<ServeArgs>();
            app->add_option("STORE", a->store, "Store directory to serve")->required();
            app->add_option("--listen", a->listen,
                            "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks one)");
            app->footer(
                "Chunk files, indexes (.idx) and signatures (.idx.sig) are sent with\n"
                "'Cache-Control: public, max-age=31536000, immutable', channels (.channel) with\n"
                "'no-cache' (caches revalidate them on every use), other files with a max-age\n"
                "of 60 s. Stops on SIGINT, SIGTERM or SIGHUP.");
            return [a] { return RunServe(*a); };
          }};
}

}  // namespace hloop::cli
