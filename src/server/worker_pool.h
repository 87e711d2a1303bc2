// A fixed set of threads running tasks from one FIFO queue: the request
// workers of the NBD and 9P servers, shared by all their connections.
//
// Thread safety: Submit from any thread. The destructor runs every task
// already queued, then joins the threads; no Submit may race it.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace hloop::server {

class WorkerPool {
 public:
  // Starts max(1, threads) threads.
  explicit WorkerPool(unsigned threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task) EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);

  Mutex mu_;
  CondVar cv_;  // a task queued, or stopping
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace hloop::server
