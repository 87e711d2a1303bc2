// Clang thread-safety annotations (-Wthread-safety). They document which
// mutex guards which member and which functions need it held, and a clang
// build with -Wthread-safety -Werror (scripts/test.sh, "tsa") checks them.
// Under g++ they expand to nothing. Modelled on LevelDB's port/thread_annotations.h.
#pragma once

#if defined(__clang__)
#define HLOOP_TSA(x) __attribute__((x))
#else
#define HLOOP_TSA(x)
#endif

#define CAPABILITY(x) HLOOP_TSA(capability(x))
#define SCOPED_CAPABILITY HLOOP_TSA(scoped_lockable)
#define GUARDED_BY(x) HLOOP_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) HLOOP_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) HLOOP_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) HLOOP_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) HLOOP_TSA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) HLOOP_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) HLOOP_TSA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) HLOOP_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) HLOOP_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) HLOOP_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) HLOOP_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS HLOOP_TSA(no_thread_safety_analysis)
