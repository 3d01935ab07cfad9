//! The root component: owns the one reducer, lays out the views and turns the components'
//! callbacks into [`commands`].

use yew::prelude::*;

use crate::commands;
use crate::components::block_map::BlockMap;
use crate::components::block_view::BlockView;
use crate::components::header::Header;
use crate::components::log_view::LogView;
use crate::components::mirror_view::MirrorView;
use crate::components::notice_bar::NoticeBar;
use crate::components::policy_panel::PolicyPanel;
use crate::components::scheme_view::SchemeView;
use crate::components::storage_panel::StoragePanel;
use crate::components::store_picker::StorePicker;
use crate::components::tabs::Tabs;
use crate::components::tour::Tour;
use crate::components::volume_actions::VolumeActions;
use crate::components::volume_tree::VolumeTree;
use crate::components::write_form::WriteForm;
use crate::hooks::use_storage_estimate::use_storage_estimate;
use crate::state::{Action, DashboardState, LogCursor, View};

#[component]
pub fn App() -> Html {
    let state = use_reducer(DashboardState::default);
    use_storage_estimate(state.dispatcher());
    {
        let dispatch = state.dispatcher();
        use_effect_with((), move |_| {
            dispatch.dispatch(Action::Known(commands::load_known()))
        });
    }
    let dispatch = state.dispatcher();
    let client = state.store.as_ref().map(|s| s.client.clone());
    let busy = state.busy.is_some();
    let selected = state.selected;
    let shown = state.shown_volume();

    // The log and the policies load when their view is first shown for a store.
    {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        use_effect_with((state.view, client.clone()), move |(view, client)| {
            if let Some(client) = client.clone() {
                match view {
                    View::Log => commands::load_log(dispatch, client, None),
                    View::Policies => yew::platform::spawn_local(async move {
                        if let Err(error) = commands::load_policy(&dispatch, &client).await {
                            dispatch
                                .dispatch(Action::Notice(Some(crate::state::Notice::Error(error))));
                        }
                    }),
                    _ => {}
                }
            }
        });
    }

    // The scheme is read again whenever it is shown and the store changed (every action refreshes
    // the volumes, whose entry counts move with each write) or another volume was chosen.
    {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        let volumes = state.store.as_ref().map(|s| s.volumes.clone());
        use_effect_with(
            (state.view, client.clone(), volumes, selected),
            move |(view, client, _, selected)| {
                if let (View::Scheme, Some(client)) = (view, client.clone()) {
                    commands::load_scheme(dispatch, client, *selected);
                }
            },
        );
    }

    let on_mirror = {
        let (dispatch, mirror) = (dispatch.clone(), state.mirror.clone());
        Callback::from(move |action| {
            commands::mirror_action(dispatch.clone(), mirror.clone(), action)
        })
    };

    let on_open = {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        Callback::from(move |(name, backend, geometry)| {
            commands::open_store(dispatch.clone(), client.clone(), name, backend, geometry)
        })
    };
    let on_close = {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        Callback::from(move |()| {
            if let Some(client) = client.clone() {
                commands::close_store(dispatch.clone(), client)
            }
        })
    };
    let on_delete_store = {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        Callback::from(move |(name, backend)| {
            commands::delete_store(dispatch.clone(), client.clone(), name, backend)
        })
    };
    let on_import = {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        Callback::from(move |(name, backend, block_size, file)| {
            commands::import_store(
                dispatch.clone(),
                client.clone(),
                name,
                backend,
                block_size,
                file,
            )
        })
    };
    let on_import_stream = {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        Callback::from(move |(name, backend, file)| {
            commands::import_stream_store(dispatch.clone(), client.clone(), name, backend, file)
        })
    };
    let on_persist = {
        let dispatch = dispatch.clone();
        Callback::from(move |()| commands::persist(dispatch.clone()))
    };
    let on_dismiss = {
        let dispatch = dispatch.clone();
        Callback::from(move |()| dispatch.dispatch(Action::Notice(None)))
    };
    let on_view = {
        let dispatch = dispatch.clone();
        Callback::from(move |view| dispatch.dispatch(Action::View(view)))
    };
    let on_tour = {
        let (dispatch, client) = (dispatch.clone(), client.clone());
        Callback::from(move |step| commands::tour_step(dispatch.clone(), client.clone(), step))
    };

    let store_view = state.store.as_ref().map(|store| {
        let block_count = store.info.block_count;
        let on_select = {
            let (dispatch, client) = (dispatch.clone(), store.client.clone());
            Callback::from(move |volume: u64| {
                dispatch.dispatch(Action::Select(Some(volume)));
                commands::show_map(dispatch.clone(), client.clone(), volume, block_count, None);
            })
        };
        let map_volume = state.map.volume;
        let on_open_block = {
            let (dispatch, client) = (dispatch.clone(), store.client.clone());
            Callback::from(move |addr| commands::open_block(dispatch.clone(), client.clone(), map_volume, addr))
        };
        let on_zoom = {
            let (dispatch, client) = (dispatch.clone(), store.client.clone());
            Callback::from(move |range| {
                commands::show_map(dispatch.clone(), client.clone(), map_volume, block_count, range)
            })
        };
        let on_close_block = {
            let dispatch = dispatch.clone();
            Callback::from(move |()| dispatch.dispatch(Action::Detail(None)))
        };
        let on_write = {
            let (dispatch, store) = (dispatch.clone(), store.clone());
            Callback::from(move |request| commands::write(dispatch.clone(), &store, selected, request))
        };
        let on_action = {
            let (dispatch, store) = (dispatch.clone(), store.clone());
            Callback::from(move |action| commands::volume_action(dispatch.clone(), &store, selected, action))
        };
        let on_policy = {
            let (dispatch, client) = (dispatch.clone(), store.client.clone());
            Callback::from(move |action| commands::policy_action(dispatch.clone(), client.clone(), selected, action))
        };
        let after = state.log.last().map(|e| e.seq);
        let on_more = {
            let (dispatch, client) = (dispatch.clone(), store.client.clone());
            Callback::from(move |()| commands::load_log(dispatch.clone(), client.clone(), after))
        };
        let on_reload = {
            let (dispatch, client) = (dispatch.clone(), store.client.clone());
            Callback::from(move |()| commands::load_log(dispatch.clone(), client.clone(), None))
        };
        let on_read = {
            let dispatch = dispatch.clone();
            Callback::from(move |volume: u64| dispatch.dispatch(Action::Select(Some(volume))))
        };
        let on_reshape = {
            let (dispatch, client, before) =
                (dispatch.clone(), store.client.clone(), state.scheme.clone());
            Callback::from(move |reshape| {
                if let Some(before) = before.clone() {
                    commands::reshape(dispatch.clone(), client.clone(), selected, before, reshape)
                }
            })
        };
        let on_step = {
            let (dispatch, client, cursor) =
                (dispatch.clone(), store.client.clone(), state.cursor.clone());
            Callback::from(move |()| commands::cursor_step(dispatch.clone(), client.clone(), cursor.clone()))
        };
        let on_rewind = {
            let dispatch = dispatch.clone();
            Callback::from(move |()| dispatch.dispatch(Action::Cursor(LogCursor::default())))
        };
        let on_dismiss_transition = {
            let dispatch = dispatch.clone();
            Callback::from(move |()| dispatch.dispatch(Action::Transition(None)))
        };
        match state.view {
            View::Scheme => html! {
                <SchemeView scheme={state.scheme.clone()} transition={state.transition.clone()}
                    cursor={state.cursor.clone()} busy={busy} on_read={on_read} on_reshape={on_reshape}
                    on_step={on_step} on_rewind={on_rewind} on_dismiss={on_dismiss_transition} />
            },
            // The mirror view has no store of its own to show.
            View::Mirror => Html::default(),
            View::Blocks | View::Tour => html! {
                <>
                    <VolumeTree volumes={store.volumes.clone()} space={store.space.clone()} shown={shown} on_select={on_select} />
                    <BlockMap map={state.map.clone()} volumes={store.volumes.clone()} block_count={block_count}
                        on_open={on_open_block} on_zoom={on_zoom} />
                    if let Some(detail) = state.detail.clone() {
                        <BlockView detail={detail} on_close={on_close_block} />
                    }
                    <WriteForm busy={busy} on_write={on_write} />
                    <VolumeActions volumes={store.volumes.clone()} shown={shown} busy={busy}
                        diff={state.diff.clone()} on_action={on_action} />
                </>
            },
            View::Log => html! {
                <LogView entries={state.log.clone()} end={state.log_end} on_more={on_more} on_reload={on_reload} />
            },
            View::Policies => html! {
                <PolicyPanel data={state.policy.clone()} busy={busy} on_action={on_policy} />
            },
        }
    });

    html! {
        <>
            <Header engine_version={state.engine_version} />
            <NoticeBar notice={state.notice.clone()} busy={state.busy.clone()} on_dismiss={on_dismiss} />
            <Tabs current={state.view} on_select={on_view} />
            <main class="panels" id={format!("view-{}", state.view.id())}>
                if state.view == View::Tour {
                    <Tour step={state.tour_step} busy={busy} on_step={on_tour} />
                }
                if state.view == View::Mirror {
                    <MirrorView mirror={state.mirror.clone()} busy={busy} on_action={on_mirror} />
                }
                <StorePicker known={state.known.clone()}
                    open={state.store.as_ref().map(|s| (s.client.name.clone(), s.client.backend))}
                    busy={busy} on_open={on_open} on_close={on_close} on_delete={on_delete_store} on_import={on_import}
                    on_import_stream={on_import_stream} />
                <StoragePanel estimate={state.storage.clone()} persisted={state.persisted}
                    info={state.store.as_ref().map(|s| s.info.clone())} on_persist={on_persist} />
                { for store_view }
                if state.store.is_none() && !matches!(state.view, View::Tour | View::Mirror) {
                    <section class="panel wide empty">
                        <p>{ "Open or create a store to see its partitions, blocks, log and policies — or take the guided tour." }</p>
                    </section>
                }
            </main>
        </>
    }
}
