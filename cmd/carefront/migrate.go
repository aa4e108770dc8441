package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var status bool
	cfg, _, err := parseFlags("migrate", "Applies every pending database migration (serve does this too at start).\nOn PostgreSQL an advisory lock lets several instances start at once.", args, getenv, stdout,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&status, "status", false, "list the migrations and whether each is applied; change nothing")
		})
	if err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if status {
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			fmt.Fprintf(stdout, "%05d  %-8s  %s\n", s.Source.Version, s.State, s.Source.Path)
		}
		return nil
	}
	res, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, r := range res {
		fmt.Fprintf(stdout, "applied %05d %s (%s)\n", r.Source.Version, r.Source.Path, r.Duration.Round(1e6))
	}
	fmt.Fprintf(stdout, "%s database is up to date (%d applied now)\n", db.Dialect, len(res))
	return nil
}
