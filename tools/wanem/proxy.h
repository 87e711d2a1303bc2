// hloop-wanem's relay: a user-space TCP proxy that emulates a WAN link between
// its clients and one upstream server (this machine has no netem).
//
// Thread model: one thread runs everything in one epoll loop; nothing here is
// thread-safe, and nothing needs to be.
//
// The link model, exactly (d = rtt / 2, t0 = when the proxy accepted a client):
//  - Handshake: the kernel completes the client's connect() at once (user space
//    cannot delay that), so the proxy charges the handshake afterwards. It does
//    not read the client's bytes before t0 + RTT (when a real connect() would
//    have returned; they wait in the kernel), and it opens the upstream
//    connection at t0 + 1.5 RTT (when the final ACK would reach the server).
//    So a request sent right after connect() reaches the server at
//    t0 + 1.5 RTT and its answer the client at t0 + 2 RTT, as on a real link.
//    A refused upstream connection resets the client at t0 + 1.5 RTT.
//  - Delay: every byte read from one side is written to the other d after it
//    left the (emulated) bottleneck; without --rate that is d after the read.
//    EOF (a shutdown of the write side) is propagated the same way, after the
//    data before it.
//  - Bandwidth: each direction is one FIFO serializer shared by all
//    connections (a single link), i.e. a token bucket of --rate bytes/s with
//    no burst allowance. A read of n bytes departs at max(now, link free) +
//    n / rate. Reads stop while the link's backlog exceeds ~64 KiB of transmit
//    time, so the queue (and the added queueing delay) stays small; the
//    connections that are ready read in turn, which shares the link fairly.
//  - Window: at most --window bytes per direction per connection are held in
//    the proxy (read, not yet written); like a TCP window, this caps one
//    connection at window / d bytes/s.
//  - Faults, all on the server->client stream of a connection and decided when
//    it is accepted (see FaultPlan): a reset (both sockets closed with
//    SO_LINGER 0, i.e. RST) when the client has been sent `offset` bytes; a
//    stall of --stall-ms (0: forever) at an offset; one byte XOR'ed with a
//    nonzero value at an offset. Offsets are uniform in [0, --fault-bytes); a
//    fault whose offset the stream never reaches does not happen and is not
//    counted. Decisions come from --seed and the connection's accept number,
//    so a run with the same seed and connection order repeats exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hloop::wanem {

// Microseconds on CLOCK_MONOTONIC.
using Micros = int64_t;
Micros NowMicros();

struct Options {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free port
  std::string connect;                 // HOST:PORT of the real server
  Micros rtt = 0;                      // round-trip time; d = rtt / 2 each way
  uint64_t rate = 0;                   // bytes/s per direction, all connections; 0: no cap
  uint64_t window = 4 << 20;           // bytes held per direction per connection
  uint64_t seed = 1;                   // fixes every fault decision
  double reset_prob = 0;               // per connection, in [0, 1]
  double stall_prob = 0;               // per connection, in [0, 1]
  Micros stall = 0;                    // stall length; 0 means forever
  double flip_prob = 0;                // per connection, in [0, 1]
  uint64_t fault_bytes = 1 << 20;      // fault offsets are uniform in [0, this)
  std::string stats_file;              // JSON counters go here; empty: nowhere
};

// Counters for --stats-file. Faults count when applied, not when planned: a
// flip when the byte is read from the server, a reset or stall when the
// client's stream reaches the fault's offset.
struct Stats {
  uint64_t connections = 0;             // accepted
  uint64_t active = 0;                  // open right now
  uint64_t upstream_failures = 0;       // upstream connect() failed
  uint64_t bytes_client_to_server = 0;  // written to the server
  uint64_t bytes_server_to_client = 0;  // written to clients
  uint64_t resets = 0, stalls = 0, flips = 0;
};

// Writes `stats` as one JSON object to `path` (via a temporary file and
// rename, so readers never see half a file). Returns an error message or "".
std::string WriteStatsFile(const std::string& path, const Stats& stats);

struct Conn;
struct Link;

class Proxy {
 public:
  explicit Proxy(Options options);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Resolves --connect, binds and listens. On success sets *bound to the
  // listening "HOST:PORT" (with the real port) and returns ""; else returns
  // an error message naming the address and the cause.
  std::string Listen(std::string* bound);

  // Serves until SIGTERM or SIGINT arrives on `signal_fd` (a signalfd that
  // also carries SIGUSR1, which writes the stats file). Returns an error
  // message if the loop itself failed, else "".
  // REQUIRES: Listen() succeeded.
  std::string Run(int signal_fd);

  const Stats& stats() const { return stats_; }

 private:
  void AcceptAll(Micros now);
  void Pump(Conn& c, Micros now);
  void StartUpstream(Conn& c);
  void ReadSide(Conn& c, bool from_client, Micros now);
  void WriteSide(Conn& c, bool to_client, Micros now);
  bool CanRead(const Conn& c, bool from_client, Micros now) const;
  Micros NextDeadline(Micros now) const;
  void UpdateInterest(Conn& c, Micros now);
  void Close(Conn& c, bool reset);
  void DumpStats();

  Options opt_;
  Stats stats_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  std::vector<char> upstream_addr_;  // a sockaddr_storage, filled by Listen
  unsigned upstream_addr_len_ = 0;
  std::unique_ptr<Link> up_, down_;  // client->server and server->client
  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t next_conn_id_ = 0;
  size_t round_robin_ = 0;  // where the next pass over conns_ starts
};

}  // namespace hloop::wanem
