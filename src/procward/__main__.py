from procward.cli import main

raise SystemExit(main())
