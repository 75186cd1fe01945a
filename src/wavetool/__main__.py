from wavetool.cli import main

raise SystemExit(main())
