// hloop: one binary, one subcommand per file (cmd_<name>.cc).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/common.h"
#include "util/version.h"

namespace hloop::cli {
Command PackCommand();
Command InfoCommand();
Command ServeCommand();
Command MountCommand();
Command CatCommand();
Command FetchCommand();
Command VerifyCommand();
Command StatsCommand();
Command MirrorsCommand();
Command OverlayCommand();
Command CommitCommand();
Command NbdCommand();
Command NinePCommand();
Command KeyCommand();
Command SignCommand();
Command PublishCommand();
Command LogCommand();
Command DiffCommand();
Command GcCommand();
Command RelayoutCommand();
}  // namespace hloop::cli

int main(int argc, char** argv) {
  using namespace hloop::cli;
  SetArgs(argc, argv);
  const Command commands[] = {
      PackCommand(),    InfoCommand(),   ServeCommand(), MountCommand(),   CatCommand(),
      FetchCommand(),   VerifyCommand(), StatsCommand(), MirrorsCommand(), OverlayCommand(),
      CommitCommand(),  NbdCommand(),    NinePCommand(), KeyCommand(),     SignCommand(),
      PublishCommand(), LogCommand(),    DiffCommand(),  GcCommand(),      RelayoutCommand()};
  CLI::App app{
      "hloop: disk images that live on any plain web server.\n"
      "Pack an image into content-addressed chunk files, serve them over HTTP, and\n"
      "mount the image lazily with a verified local cache.",
      "hloop"};
  app.set_version_flag("--version", std::string("hloop ") + HLOOP_VERSION);
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    runs.emplace_back(sub, c.setup(sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  for (auto& [sub, run] : runs)
    if (sub->parsed()) return run();
  return kExitUsage;
}
