// Package bench holds carefront's benchmarks: programs a user can run on
// their own machine, each printing its figures side by side as ratios. See
// README.md for the figures and the commands that produced them. Nothing in
// bench/ is imported by carefront itself.
package bench
