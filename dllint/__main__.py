from dllint.cli import main

raise SystemExit(main())
