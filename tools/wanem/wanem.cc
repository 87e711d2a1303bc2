// hloop-wanem: a user-space WAN emulator (TCP proxy) for tests and benchmarks
// on machines without netem. The link model is described in proxy.h.
//
//   hloop-wanem --listen 127.0.0.1:0 --connect 127.0.0.1:8080 --rtt 100 --rate
//   10M
//
// Prints "listening on HOST:PORT" on stdout once ready; stops on SIGTERM or
// SIGINT; SIGUSR1 (and exit) write the counters to --stats-file.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proxy.h"
#include "server/host_port.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// "10M", "256K", "1.5G", "1000": bytes, units of 1024 (as hloop's ParseSize).
bool ParseSize(const std::string& text, uint64_t* out) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (end == s || errno != 0 || !std::isfinite(v) || v < 0) return false;
  std::string unit(end);
  for (char& ch : unit) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.size() > 1 && (unit.substr(1) == "B" || unit.substr(1) == "IB")) unit.resize(1);
  double mult = 1;
  if (unit == "K")
    mult = 1024.0;
  else if (unit == "M")
    mult = 1024.0 * 1024;
  else if (unit == "G")
    mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty() && unit != "B")
    return false;
  if (v * mult > 9.0e18) return false;
  *out = uint64_t(std::llround(v * mult));
  return true;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "hloop-wanem: %s\n", message.c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  hloop::wanem::Options o;
  double rtt_ms = 0, stall_ms = 0;
  std::string rate = "0", window = "4M", fault_bytes = "1M";
  CLI::App app{
      "hloop-wanem: a TCP proxy that emulates a WAN link (latency, bandwidth,\n"
      "resets, stalls, corrupted bytes) between its clients and one server.",
      "hloop-wanem"};
  app.add_option("--listen", o.listen, "HOST:PORT to accept on (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--connect", o.connect, "HOST:PORT of the real server")->required();
  app.add_option("--rtt", rtt_ms,
                 "Round-trip time in ms (rtt/2 each way; a new "
                 "connection pays one more RTT)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rate", rate,
                 "Bandwidth per direction, shared by all "
                 "connections, bytes/s with K/M/G (0: unlimited)")
      ->capture_default_str();
  app.add_option("--window", window, "Bytes held per direction per connection")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for every fault decision")->capture_default_str();
  app.add_option("--reset-prob", o.reset_prob, "Probability that a connection is reset")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--stall-prob", o.stall_prob, "Probability that a connection stalls")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--stall-ms", stall_ms, "Stall length in ms (0: forever)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--flip-prob", o.flip_prob,
                 "Probability that one byte of a connection is corrupted")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-bytes", fault_bytes,
                 "Faults hit at a server->client offset uniform in [0, this)")
      ->capture_default_str();
  app.add_option("--stats-file", o.stats_file, "Write JSON counters here on SIGUSR1 and at exit");
  app.footer(
      "Faults apply to the server->client stream. See tools/wanem/proxy.h for "
      "the exact model.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  for (const std::string* address : {&o.listen, &o.connect}) {
    auto parsed = hloop::server::ParseHostPort(*address);
    if (!parsed.ok()) return Usage(parsed.status().message());
  }
  if (!ParseSize(rate, &o.rate)) return Usage("--rate " + rate + ": not a size");
  if (!ParseSize(window, &o.window) || o.window == 0)
    return Usage("--window " + window + ": not a positive size");
  if (!ParseSize(fault_bytes, &o.fault_bytes) || o.fault_bytes == 0)
    return Usage("--fault-bytes " + fault_bytes + ": not a positive size");
  o.rtt = hloop::wanem::Micros(std::llround(rtt_ms * 1000));
  o.stall = hloop::wanem::Micros(std::llround(stall_ms * 1000));

  // Signals arrive through a signalfd in the event loop; SIGPIPE is moot
  // (send uses MSG_NOSIGNAL) but ignored in case.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    std::perror("hloop-wanem: signalfd");
    return kExitError;
  }

  hloop::wanem::Proxy proxy(o);
  std::string bound;
  std::string err = proxy.Listen(&bound);
  if (!err.empty()) {
    std::fprintf(stderr, "hloop-wanem: %s\n", err.c_str());
    return kExitError;
  }
  std::printf("listening on %s\n", bound.c_str());
  std::fflush(stdout);
  err = proxy.Run(sfd);
  close(sfd);
  if (!err.empty()) {
    std::fprintf(stderr, "hloop-wanem: %s\n", err.c_str());
    return kExitError;
  }
  return 0;
}
