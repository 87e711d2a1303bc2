// hloop serve STORE: an embedded static web server for a store.
#include <pthread.h>
#include <signal.h>

#include <thread>

#include "cli/common.h"
#include "serve/http_server.h"

namespace hloop::cli {

namespace {
struct ServeArgs {
  std::string store, listen = "127.0.0.1:8080";
};

int RunServe(const ServeArgs& a) {
  serve::ServeOptions o;
  o.root = a.store;
  size_t colon = a.listen.rfind(':');
  if (colon == std::string::npos) return Fail("--listen " + a.listen + ": expected HOST:PORT");
  o.host = a.listen.substr(0, colon);
  if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']') o.host = o.host.substr(1, o.host.size() - 2);
  try {
    o.port = std::stoi(a.listen.substr(colon + 1));
  } catch (...) {
    return Fail("--listen " + a.listen + ": bad port");
  }
  if (o.port < 0 || o.port > 65535) return Fail("--listen " + a.listen + ": bad port");
  o.on_listening = [&](int port) {
    std::printf("serving %s on http://%s:%d/\n", a.store.c_str(), o.host.c_str(), port);
    std::fflush(stdout);
  };
  // Signals are taken by one thread with sigwait, which stops the server.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread waiter([set] {
    int sig = 0;
    sigwait(&set, &sig);
    serve::StopServing();
  });
  waiter.detach();
  Status st = serve::Serve(o);
  if (!st.ok()) return Fail(st);
  return kExitOk;
}
}  // namespace

Command ServeCommand() {
  return {"serve", "Serve a store over HTTP (for tests and quick starts; use any web server in production)",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<ServeArgs>();
            app->add_option("STORE", a->store, "Store directory to serve")->required();
            app->add_option("--listen", a->listen, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks one)");
            app->footer("Chunk files are sent with 'Cache-Control: public, max-age=31536000, immutable';\n"
                        "indexes with a max-age of 60 s. Stops on SIGINT or SIGTERM.");
            return [a] { return RunServe(*a); };
          }};
}

}  // namespace hloop::cli
