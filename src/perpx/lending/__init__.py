"""The loan book outside the engine: its report (``perpx lending report``) and the collateral-crash scenario."""
